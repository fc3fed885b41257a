"""Pascal VOC folders: the 1-based inclusive -> continuous conversion."""
import os

import numpy as np
import pytest

from minirpn.data import VOC_CLASSES, VocDataset, write_png

XML = """<annotation>
  <folder>VOC2007</folder>{filename}
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""

OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult>
  <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>
  <ymax>{ymax}</ymax></bndbox></object>"""


def obj(name, xmin, ymin, xmax, ymax, difficult=0):
    return OBJECT.format(name=name, xmin=xmin, ymin=ymin, xmax=xmax,
                         ymax=ymax, difficult=difficult)


def make_voc(root, records, split="trainval"):
    """records: {image_id: (w, h, [object xml], filename or None)}."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for image_id, (w, h, objects, filename) in records.items():
        tag = f"\n  <filename>{filename}</filename>" if filename else ""
        with open(os.path.join(root, "Annotations", f"{image_id}.xml"),
                  "w") as f:
            f.write(XML.format(filename=tag, w=w, h=h,
                               objects="\n  ".join(objects)))
        write_png(os.path.join(root, "JPEGImages",
                               filename or f"{image_id}.jpg"),
                  np.full((h, w, 3), 128, np.uint8))
    with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"),
              "w") as f:
        f.write("\n".join(records) + "\n")
    return root


def two_images():
    return {
        "0001": (50, 40, [obj("dog", 1, 2, 10, 20),
                          obj("person", 5, 5, 50, 40, difficult=1)], None),
        "0002": (30, 20, [obj("dog", 7, 7, 7, 7)], "0002.png"),
    }


def test_one_based_inclusive_coordinates_become_continuous(tmp_path):
    ds = VocDataset(make_voc(tmp_path, two_images()))
    assert ds.class_names == VOC_CLASSES and ds.image_ids == ["0001", "0002"]
    image, target = ds[0]
    assert image.shape == (40, 50, 3) and image.dtype == np.uint8
    # xmin=1..xmax=10 covers pixels 0..9 (0-based): [0, 10), width 10.
    np.testing.assert_array_equal(
        target["boxes"],
        np.array([[0, 1, 10, 20], [4, 4, 50, 40]], np.float32))
    assert target["boxes"].dtype == np.float32
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog") + 1,
                                         VOC_CLASSES.index("person") + 1]
    assert target["labels"].dtype == np.int64
    assert target["difficult"].tolist() == [False, True]
    assert target["image_id"] == "0001"
    # A one-pixel box (xmin == xmax == 7) is 1 px wide: [6, 7).
    np.testing.assert_array_equal(ds[1][1]["boxes"], [[6, 6, 7, 7]])
    assert ds[1][0].shape == (20, 30, 3)                # <filename> honoured


def test_difficult_left_out_on_request(tmp_path):
    ds = VocDataset(make_voc(tmp_path, two_images()), include_difficult=False)
    assert ds[0][1]["labels"].tolist() == [VOC_CLASSES.index("dog") + 1]


def test_class_names_inferred_sorted(tmp_path):
    ds = VocDataset(make_voc(tmp_path, two_images()), class_names=None)
    assert ds.class_names == ("dog", "person")
    assert ds[0][1]["labels"].tolist() == [1, 2]


def test_image_without_objects(tmp_path):
    ds = VocDataset(make_voc(tmp_path, {"a": (10, 10, [], None)}))
    assert ds[0][1]["boxes"].shape == (0, 4)


def test_split_file_selects_images(tmp_path):
    make_voc(tmp_path, two_images())
    with open(tmp_path / "ImageSets" / "Main" / "val.txt", "w") as f:
        f.write("0002\n")
    assert VocDataset(tmp_path, split="val").image_ids == ["0002"]


BAD = [  # (second image's objects, words in the message)
    ([obj("dog", 1, 1, 5, 5), obj("dog", 1, 1, 5, 5).replace(
        "<xmax>5</xmax>", "")], "object 2: field 'bndbox/xmax' missing"),
    ([obj("cat", 1, 1, 5, 5).replace("<name>cat</name>", "")],
     "object 1: field 'name' missing"),
    ([obj("unicorn", 1, 1, 5, 5)], "object 1: field 'name' = 'unicorn'"),
    ([obj("dog", 6, 1, 5, 5)], "object 1: field 'bndbox/xmax' = 5 is less"),
    ([obj("dog", 0, 1, 5, 5)], "object 1: fields 'bndbox/xmin..xmax'"),
    ([obj("dog", 1, 1, 5, 21)], "object 1: fields 'bndbox/ymin..ymax'"),
    ([obj("dog", 1, 1, "five", 5)], "object 1: field 'bndbox/xmax' must be"),
    ([obj("dog", 1, 1, 5, 5, difficult=3)], "object 1: field 'difficult'"),
]


@pytest.mark.parametrize("objects,words", BAD)
def test_malformed_objects_name_file_object_and_field(tmp_path, objects,
                                                      words):
    records = two_images()
    records["0002"] = (30, 20, objects, None)
    with pytest.raises(ValueError) as info:
        VocDataset(make_voc(tmp_path, records))
    message = str(info.value)
    assert os.path.join("Annotations", "0002.xml") in message, message
    assert words in message, message


def test_malformed_xml_and_size(tmp_path):
    make_voc(tmp_path, two_images())
    xml = tmp_path / "Annotations" / "0002.xml"
    xml.write_text("<annotation><size>")
    with pytest.raises(ValueError, match="0002.xml: not valid XML"):
        VocDataset(tmp_path)
    xml.write_text("<annotation><size><width>30</width></size></annotation>")
    with pytest.raises(ValueError, match="0002.xml: field 'size/height'"):
        VocDataset(tmp_path)


def test_missing_files_are_named(tmp_path):
    make_voc(tmp_path, two_images())
    os.remove(tmp_path / "JPEGImages" / "0001.jpg")
    with pytest.raises(FileNotFoundError, match="0001.jpg"):
        VocDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="0001.jpg"):
        VocDataset(tmp_path, check_files=False)[0]
    os.remove(tmp_path / "Annotations" / "0002.xml")
    with pytest.raises(FileNotFoundError, match="0002.xml"):
        VocDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="test.txt"):
        VocDataset(tmp_path, split="test")


def test_empty_split_is_an_error(tmp_path):
    make_voc(tmp_path, two_images())
    (tmp_path / "ImageSets" / "Main" / "trainval.txt").write_text("\n")
    with pytest.raises(ValueError, match="trainval.txt: no image ids"):
        VocDataset(tmp_path)


def test_image_size_must_match_the_xml(tmp_path):
    make_voc(tmp_path, two_images())
    write_png(tmp_path / "JPEGImages" / "0001.jpg",
              np.zeros((41, 50, 3), np.uint8))
    with pytest.raises(ValueError, match="0001.xml.*height 40"):
        VocDataset(tmp_path)[0]
