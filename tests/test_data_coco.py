"""COCO JSON loading, writing, and their round trip."""
import copy
import json
import os

import numpy as np
import pytest

from minirpn.data import CocoDataset, ShapesDataset, make_dataset, write_png


def small_coco():
    """Two images (the second without objects), categories 7 and 3."""
    return {
        "images": [
            {"id": 5, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 9, "file_name": "b.png", "width": 20, "height": 10}],
        "annotations": [
            {"id": 56, "image_id": 5, "category_id": 7,
             "bbox": [10, 5, 20, 15], "iscrowd": 0, "area": 300},
            {"id": 57, "image_id": 5, "category_id": 3,
             "bbox": [0.5, 0, 2.25, 30], "iscrowd": 0, "area": 67.5},
            {"id": 58, "image_id": 5, "category_id": 3,
             "bbox": [30, 20, 10, 10], "iscrowd": 1, "area": 100}],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    }


def write_folder(folder, coco):
    """annotations.json plus black PNGs of the sizes the records give."""
    os.makedirs(folder, exist_ok=True)
    for img in coco["images"]:
        if isinstance(img, dict) and isinstance(img.get("file_name"), str):
            h, w = (max(img.get(k, 8), 1) for k in ("height", "width"))
            write_png(os.path.join(folder, img["file_name"]),
                      np.zeros((h, w, 3), np.uint8))
    path = os.path.join(folder, "annotations.json")
    with open(path, "w") as f:
        json.dump(coco, f)
    return path


def test_boxes_labels_and_category_mapping(tmp_path):
    ds = CocoDataset(write_folder(tmp_path, small_coco()))
    # Sorted category ids 3, 7 -> labels 1, 2.
    assert ds.class_names == ("cat", "dog")
    assert ds.label_to_category_id == {1: 3, 2: 7}
    assert ds.category_id_to_label == {3: 1, 7: 2}
    assert ds.image_ids == [5, 9] and len(ds) == 2
    image, target = ds[0]
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8
    # [x, y, w, h] -> (x, y, x + w, y + h), continuous: no +-1.
    np.testing.assert_array_equal(
        target["boxes"], np.array([[10, 5, 30, 20], [0.5, 0, 2.75, 30]],
                                  np.float32))
    assert target["boxes"].dtype == np.float32
    assert target["labels"].tolist() == [2, 1]
    assert target["labels"].dtype == np.int64
    assert target["difficult"].tolist() == [False, False]   # crowd left out
    assert target["image_id"] == 5


def test_image_without_annotations_is_kept(tmp_path):
    _, target = CocoDataset(write_folder(tmp_path, small_coco()))[1]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_crowd_regions_included_as_difficult_on_request(tmp_path):
    ds = CocoDataset(write_folder(tmp_path, small_coco()), include_crowd=True)
    _, target = ds[0]
    assert target["difficult"].tolist() == [False, False, True]
    np.testing.assert_array_equal(target["boxes"][2], [30, 20, 40, 30])


def test_images_dir_overrides_the_json_folder(tmp_path):
    write_folder(tmp_path / "imgs", small_coco())
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(small_coco()))
    assert CocoDataset(path, images_dir=tmp_path / "imgs")[0][0].shape == \
        (30, 40, 3)


def test_targets_are_copies(tmp_path):
    ds = CocoDataset(write_folder(tmp_path, small_coco()))
    ds[0][1]["boxes"][:] = -1
    assert ds[0][1]["boxes"].min() >= 0


def test_make_dataset_round_trip(tmp_path):
    path = make_dataset("shapes", tmp_path, num_images=4, seed=11)
    assert os.path.basename(path) == "annotations.json"
    back, original = CocoDataset(path), ShapesDataset(4, seed=11)
    assert back.class_names == original.class_names
    assert back.label_to_category_id == {1: 1, 2: 2, 3: 3}
    for i in range(4):
        (ia, ta), (ib, tb) = original[i], back[i]
        np.testing.assert_array_equal(ia, ib)
        for key in ("boxes", "labels", "difficult"):
            np.testing.assert_array_equal(ta[key], tb[key])
            assert ta[key].dtype == tb[key].dtype
        assert ta["image_id"] == tb["image_id"] == i
    with open(path) as f:
        coco = json.load(f)
    ann = coco["annotations"][0]
    x, y, w, h = ann["bbox"]
    assert ann["iscrowd"] == 0 and ann["area"] == pytest.approx(w * h)


def test_make_dataset_refuses_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="shapes"):
        make_dataset("nope", tmp_path, 2, 0)


def mutate(change):
    coco = small_coco()
    change(coco)
    return coco


BAD = [  # (change, record, field, words in the message)
    (lambda c: c["annotations"][1].update(bbox=[1, 2]),
     "annotations[1] (id 57)", "'bbox'", "4 numbers"),
    (lambda c: c["annotations"][1].pop("bbox"),
     "annotations[1] (id 57)", "'bbox'", "missing"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 0, 4]),
     "annotations[0] (id 56)", "'bbox'", "width and height"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, -3, 4]),
     "annotations[0] (id 56)", "'bbox'", "width and height"),
    (lambda c: c["annotations"][0].update(bbox=[30, 2, 11, 4]),
     "annotations[0] (id 56)", "'bbox'", "outside"),
    (lambda c: c["annotations"][0].update(bbox=[-1, 2, 3, 4]),
     "annotations[0] (id 56)", "'bbox'", "outside"),
    (lambda c: c["annotations"][0].update(bbox=[1, "2", 3, 4]),
     "annotations[0] (id 56)", "'bbox'", "4 numbers"),
    (lambda c: c["annotations"][2].update(category_id=4),
     "annotations[2] (id 58)", "'category_id'", "no category"),
    (lambda c: c["annotations"][2].update(image_id=1),
     "annotations[2] (id 58)", "'image_id'", "no image"),
    (lambda c: c["annotations"][2].update(iscrowd=2),
     "annotations[2] (id 58)", "'iscrowd'", "0 or 1"),
    (lambda c: c["images"][1].pop("file_name"),
     "images[1] (id 9)", "'file_name'", "missing"),
    (lambda c: c["images"][1].update(width=-4),
     "images[1] (id 9)", "'width'", "positive int"),
    (lambda c: c["images"][1].update(id=5),
     "images[1] (id 5)", "'id'", "repeats"),
    (lambda c: c["categories"][1].pop("name"),
     "categories[1] (id 3)", "'name'", "missing"),
    (lambda c: c["categories"][0].update(id="7"),
     "categories[0] (id 7)", "'id'", "must be an int"),
]


@pytest.mark.parametrize("change,record,field,words", BAD)
def test_malformed_records_are_named(tmp_path, change, record, field, words):
    path = write_folder(tmp_path, mutate(change))
    with pytest.raises(ValueError) as info:
        CocoDataset(path)
    message = str(info.value)
    for part in ("annotations.json", record, field, words):
        assert part in message, (part, message)


@pytest.mark.parametrize("content,words", [
    ("{not json", "not valid JSON"),
    ("[]", "top level"),
    (json.dumps({"images": [], "annotations": [],
                 "categories": [{"id": 1, "name": "a"}]}),
     "'images' is empty"),
    (json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 8,
                             "height": 8}], "categories": []}),
     "'annotations' must be a list"),
])
def test_malformed_files_are_named(tmp_path, content, words):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="broken.json") as info:
        CocoDataset(path)
    assert words in str(info.value)


def test_missing_json_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        CocoDataset(tmp_path / "nothing.json")


def test_missing_image_file_is_named(tmp_path):
    path = write_folder(tmp_path, small_coco())
    os.remove(tmp_path / "b.png")
    with pytest.raises(FileNotFoundError) as info:
        CocoDataset(path)
    assert "images[1] (id 9)" in str(info.value)
    assert str(tmp_path / "b.png") in str(info.value)
    ds = CocoDataset(path, check_files=False)        # later, when read
    ds[0]
    with pytest.raises(FileNotFoundError, match="b.png"):
        ds[1]


def test_image_size_must_match_the_record(tmp_path):
    coco = small_coco()
    path = write_folder(tmp_path, coco)
    write_png(tmp_path / "a.png", np.zeros((31, 40, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images\[0\] \(id 5\).*height 30"):
        CocoDataset(path)[0]


def test_input_dict_unchanged_by_parsing(tmp_path):
    coco = small_coco()
    before = copy.deepcopy(coco)
    CocoDataset(write_folder(tmp_path, coco))
    assert coco == before
