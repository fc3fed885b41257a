import pytest

from minirpn import Config
from minirpn.config import TOY_CHANNELS, VGG16_CHANNELS


def test_paper_preset_has_the_papers_and_py_faster_rcnns_defaults():
    c = Config.paper(20)
    assert (c.target_size, c.max_size) == (600, 1000)
    assert c.backbone_channels == VGG16_CHANNELS
    assert c.stride == 16 and c.num_anchors == 9
    assert (c.rpn_positive_iou, c.rpn_negative_iou) == (0.7, 0.3)
    assert (c.rpn_batch_size, c.rpn_positive_fraction) == (256, 0.5)
    assert (c.rpn_pre_nms_top_n_train, c.rpn_post_nms_top_n_train) == (12000, 2000)
    assert (c.rpn_pre_nms_top_n_test, c.rpn_post_nms_top_n_test) == (6000, 300)
    assert (c.roi_batch_size, c.roi_positive_fraction) == (128, 0.25)
    assert (c.roi_negative_iou_floor, c.roi_negative_iou, c.roi_positive_iou) == (0.1, 0.5, 0.5)
    assert (c.rpn_sigma, c.roi_sigma) == (3.0, 1.0)
    assert (c.score_threshold, c.nms_threshold, c.detections_per_image) == (0.05, 0.3, 100)
    assert c.roi_output_size == 7 and c.crop_method == "roi_pool"


def test_toy_preset_is_small_and_derives_its_stride():
    c = Config.toy(3)
    assert c.backbone_channels == TOY_CHANNELS
    assert c.stride == 8
    sizes = [c.stride * s for s in c.anchor_scales]
    assert min(sizes) <= 16 and max(sizes) >= 128


def test_json_round_trip_is_exact():
    c = Config.toy(3, crop_method="roi_align", dtype="float64")
    assert Config.from_json(c.to_json()) == c


@pytest.mark.parametrize("field,value,match", [
    ("num_classes", 0, "num_classes"),
    ("dtype", "float16", "dtype"),
    ("crop_method", "bilinear", "crop_method"),
    ("rpn_positive_iou", 1.5, "rpn_positive_iou"),
    ("roi_negative_iou_floor", 0.6, "roi_negative_iou_floor"),
    ("roi_negative_iou", 0.7, "roi_negative_iou"),
    ("box_stds", (0.1, 0.1, 0.0, 0.2), "box_stds"),
])
def test_impossible_values_are_named(field, value, match):
    kwargs = {"num_classes": 3, field: value}
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def test_unknown_json_fields_are_rejected():
    with pytest.raises(ValueError, match="bogus"):
        Config.from_dict({"num_classes": 2, "bogus": 1})


def test_a_config_saved_before_the_roi_threshold_rename_still_loads():
    """Checkpoints written with roi_fg_iou / roi_bg_iou (the older names)
    load with today's positive / negative names."""
    old = Config.toy(3).to_dict()
    for name in ("roi_positive_iou", "roi_negative_iou", "roi_negative_iou_floor"):
        del old[name]
    old.update(roi_fg_iou=0.6, roi_bg_iou=[0.2, 0.55])
    c = Config.from_dict(old)
    assert (c.roi_positive_iou, c.roi_negative_iou, c.roi_negative_iou_floor) == (0.6, 0.55, 0.2)
