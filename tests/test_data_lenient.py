"""Lenient loading on request (clip, skip_invalid), reported per reason;
strict by default, with errors that name the option that lets a file in."""
import json
import os

import numpy as np
import pytest

from minirpn.data import CocoDataset, VocDataset, write_png
from minirpn.data.validation import (MISSING_FILE, OUTSIDE, OVERHANG,
                                     UNKNOWN_CLASS, UNREADABLE, WRONG_SIZE,
                                     ZERO_SIZE)

from test_data_coco import small_coco, write_folder
from test_data_voc import make_voc, obj, two_images


def messy_coco():
    """small_coco plus a zero-width box, a half-pixel overhang, a box wholly
    outside and a crowd box outside the image (image 5 is 40x30)."""
    coco = small_coco()
    coco["annotations"] += [
        {"id": 60, "image_id": 5, "category_id": 7, "bbox": [3, 3, 0, 5]},
        {"id": 61, "image_id": 5, "category_id": 7, "bbox": [20.5, 10, 20, 5]},
        {"id": 62, "image_id": 9, "category_id": 3, "bbox": [25, 0, 4, 4]},
        {"id": 63, "image_id": 9, "category_id": 3, "bbox": [-5, -5, 40, 40],
         "iscrowd": 1},
    ]
    return coco


def test_strict_by_default_and_the_error_names_the_option(tmp_path):
    path = write_folder(tmp_path, messy_coco())
    with pytest.raises(ValueError) as info:
        CocoDataset(path)
    message = str(info.value)
    assert "annotations[3] (id 60)" in message and "skip_invalid=True" in message
    coco = messy_coco()
    del coco["annotations"][3]                     # the zero-width one
    path = write_folder(tmp_path, coco)
    with pytest.raises(ValueError, match=r"\(id 61\).*clip=True.*--clip-boxes"):
        CocoDataset(path)


def test_crowd_boxes_left_out_are_not_checked(tmp_path):
    coco = small_coco()
    coco["annotations"].append({"id": 63, "image_id": 9, "category_id": 3,
                                "bbox": [-5, -5, 40, 40], "iscrowd": 1})
    ds = CocoDataset(write_folder(tmp_path, coco))
    assert not ds.report and ds[1][1]["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(id 63\)"):   # kept: checked
        CocoDataset(write_folder(tmp_path, coco), include_crowd=True)


def test_clip_and_skip_report_per_reason(tmp_path):
    ds = CocoDataset(write_folder(tmp_path, messy_coco()), skip_invalid=True,
                     clip=True)
    report = ds.report
    assert report.counts == {f"dropped: {ZERO_SIZE}": 1,
                             f"dropped: {OUTSIDE}": 1,
                             f"clipped: {OVERHANG}": 1}
    assert "(id 60)" in report.dropped[ZERO_SIZE][0]
    assert "(id 62)" in report.dropped[OUTSIDE][0]
    assert "(id 61)" in report.clipped[OVERHANG][0]
    boxes = ds[0][1]["boxes"]
    assert boxes.shape == (3, 4)
    np.testing.assert_array_equal(boxes[2], [20.5, 10, 40, 15])   # clipped
    assert ds[1][1]["boxes"].shape == (0, 4)
    summary = report.summary("coco:x.json")
    assert f"coco:x.json: dropped {ZERO_SIZE}: 1 (first: " in summary
    assert f"clipped {OVERHANG}: 1" in summary


def test_skip_without_clip_drops_the_overhanging_box(tmp_path):
    ds = CocoDataset(write_folder(tmp_path, messy_coco()), skip_invalid=True)
    assert ds.report.counts == {f"dropped: {ZERO_SIZE}": 1,
                                f"dropped: {OUTSIDE}": 2}
    assert ds[0][1]["boxes"].shape == (2, 4)


def test_clip_alone_still_refuses_a_box_with_nothing_inside(tmp_path):
    coco = messy_coco()
    del coco["annotations"][3]
    with pytest.raises(ValueError, match=r"\(id 62\).*nothing is left.*skip_invalid"):
        CocoDataset(write_folder(tmp_path, coco), clip=True)


def test_rounding_overhang_is_clipped_without_a_report(tmp_path):
    coco = small_coco()
    coco["annotations"][0]["bbox"] = [10, 5, 30.005, 15]     # x2 = 40.005
    ds = CocoDataset(write_folder(tmp_path, coco))
    assert not ds.report and ds[0][1]["boxes"][0, 2] == 40.0


def test_bad_image_files_found_when_the_dataset_is_built(tmp_path):
    coco = small_coco()
    coco["images"].append({"id": 11, "file_name": "c.png", "width": 8, "height": 8})
    path = write_folder(tmp_path, coco)
    write_png(tmp_path / "a.png", np.zeros((31, 40, 3), np.uint8))   # wrong size
    (tmp_path / "b.png").write_bytes(b"not a png")                   # unreadable
    os.remove(tmp_path / "c.png")                                    # missing
    with pytest.raises(FileNotFoundError, match=r"images\[2\] \(id 11\).*skip_invalid"):
        CocoDataset(path)
    write_png(tmp_path / "c.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images\[0\] \(id 5\).*height 30.*skip_invalid"):
        CocoDataset(path)
    os.remove(tmp_path / "c.png")
    ds = CocoDataset(path, skip_invalid=True)
    assert len(ds) == 0 and ds.image_ids == []
    assert ds.report.counts == {f"dropped: {WRONG_SIZE}": 1,
                                f"dropped: {UNREADABLE}": 1,
                                f"dropped: {MISSING_FILE}": 1}
    write_png(tmp_path / "a.png", np.zeros((30, 40, 3), np.uint8))
    ds = CocoDataset(path, skip_invalid=True)
    assert ds.image_ids == [5] and ds[0][1]["boxes"].shape == (2, 4)


def test_collect_problems_reports_every_one(tmp_path):
    coco = messy_coco()
    coco["annotations"].append({"id": 70, "image_id": 99, "category_id": 3,
                                "bbox": [0, 0, 1, 1]})
    path = write_folder(tmp_path, coco)
    coco["images"][1]["width"] = "wide"
    with open(path, "w") as f:
        json.dump(coco, f)
    ds = CocoDataset(path, collect_problems=True)
    problems = ds.report.problems
    assert any("images[1] (id 9): field 'width'" in p for p in problems)
    assert any("(id 60)" in p for p in problems)
    assert any("(id 61)" in p for p in problems)
    assert any("(id 70)" in p and "refers to no image" in p for p in problems)
    # image 9's own problem is reported once, not again for its boxes
    assert not any("(id 62)" in p or "(id 63)" in p for p in problems)
    assert len(problems) == 4


# -- Pascal VOC ---------------------------------------------------------------

def messy_voc():
    records = two_images()
    records["0003"] = (20, 10, [obj("dog", 0, 1, 5, 5),          # 0-based
                                obj("cat", 3, 3, 2, 5),          # xmax < xmin
                                obj("cat", 2, 2, 21, 10)], None)  # overhang
    return records


def test_voc_zero_based_box_strict_then_clipped(tmp_path):
    make_voc(tmp_path, messy_voc())
    with pytest.raises(ValueError, match=r"0003.xml: object 1.*0-based.*clip=True"):
        VocDataset(tmp_path)
    ds = VocDataset(tmp_path, clip=True, skip_invalid=True)
    assert ds.report.counts == {f"clipped: {OVERHANG}": 2,
                                f"dropped: {ZERO_SIZE}": 1}
    np.testing.assert_array_equal(ds[2][1]["boxes"],
                                  [[0, 0, 5, 5], [1, 1, 20, 10]])


def test_voc_own_class_names_and_unknown_names(tmp_path):
    make_voc(tmp_path, {"0001": (50, 40, [obj("widget", 1, 1, 9, 9),
                                          obj("gadget", 2, 2, 8, 8)], None)})
    with pytest.raises(ValueError, match="'widget' is not one of the 20"):
        VocDataset(tmp_path)
    ds = VocDataset(tmp_path, class_names=["widget", "gadget"])
    assert ds.class_names == ("widget", "gadget")
    assert ds[0][1]["labels"].tolist() == [1, 2]
    assert VocDataset(tmp_path, class_names=None).class_names == ("gadget", "widget")
    ds = VocDataset(tmp_path, class_names=["gadget"], skip_invalid=True)
    assert ds.report.counts == {f"dropped: {UNKNOWN_CLASS}": 1}
    assert ds[0][1]["labels"].tolist() == [1]


def test_voc_bad_image_file_found_when_built(tmp_path):
    make_voc(tmp_path, two_images())
    (tmp_path / "JPEGImages" / "0002.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="0002.xml.*cannot read image.*skip_invalid"):
        VocDataset(tmp_path)
    ds = VocDataset(tmp_path, skip_invalid=True)
    assert ds.image_ids == ["0001"]
    assert ds.report.counts == {f"dropped: {UNREADABLE}": 1}
