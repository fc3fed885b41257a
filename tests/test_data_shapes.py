"""The generated "shapes" dataset: determinism, tight boxes, ranges."""
import itertools

import numpy as np
import pytest

from minirpn.data import SHAPE_CLASSES, ShapesDataset, render_shapes
from minirpn.data.synth import box_iou


def mask_box(mask):
    """Tight continuous box of a boolean mask: last pixel + 1."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


@pytest.fixture(scope="module")
def rendered():
    """Ten images with their masks, drawn once for the whole module."""
    return [render_shapes(np.random.default_rng([7, i])) for i in range(10)]


def test_same_seed_same_items_in_any_order():
    a, b = ShapesDataset(4, seed=5), ShapesDataset(4, seed=5)
    forward = [a[i] for i in range(4)]
    backward = [b[i] for i in reversed(range(4))][::-1]
    for (ia, ta), (ib, tb) in zip(forward, backward):
        np.testing.assert_array_equal(ia, ib)
        for key in ("boxes", "labels", "difficult"):
            np.testing.assert_array_equal(ta[key], tb[key])
    np.testing.assert_array_equal(a[3][0], a[-1][0])


def test_different_seed_gives_different_images():
    a, b = ShapesDataset(1, seed=0)[0][0], ShapesDataset(1, seed=1)[0][0]
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_item_types_and_ids():
    image, target = ShapesDataset(3, seed=2)[2]
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert target["boxes"].dtype == np.float32
    assert target["boxes"].shape == (len(target["labels"]), 4)
    assert target["labels"].dtype == np.int64
    assert target["difficult"].dtype == bool and not target["difficult"].any()
    assert target["image_id"] == 2


def test_boxes_are_the_tight_extent_of_each_mask(rendered):
    for image, target, masks in rendered:
        assert masks.shape == (len(target["boxes"]),) + image.shape[:2]
        for box, mask in zip(target["boxes"], masks):
            assert box.tolist() == mask_box(mask)


def test_objects_are_painted_where_their_masks_say(rendered):
    # Each object's pixels differ from the ring just outside its mask (the
    # colour is chosen to contrast with the background it covers).
    from scipy.ndimage import binary_dilation
    for image, target, masks in rendered:
        img = image.astype(float)
        covered = masks.any(axis=0)
        for mask in masks:
            ring = binary_dilation(mask, iterations=3) & ~covered
            if ring.sum() < 20:
                continue
            gap = np.linalg.norm(img[mask].mean(0) - img[ring].mean(0))
            assert gap > 30


def test_counts_sizes_and_labels_in_range(rendered):
    seen = set()
    for image, target, _ in rendered:
        h, w = image.shape[:2]
        assert 128 <= h <= 320 and 128 <= w <= 320
        assert 1 <= len(target["labels"]) <= 6
        boxes = target["boxes"]
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        sides = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
        # 16..96 px, give or take one pixel of rasterisation.
        assert (sides >= 15).all() and (sides <= 96).all()
        assert set(target["labels"].tolist()) <= {1, 2, 3}
        seen |= set(target["labels"].tolist())
    assert seen == {1, 2, 3}
    assert len(SHAPE_CLASSES) == 3


def test_squares_are_square(rendered):
    for _, target, _ in rendered:
        b = target["boxes"][target["labels"] == 2]
        np.testing.assert_array_equal(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def test_overlap_stays_low(rendered):
    for _, target, _ in rendered:
        for a, b in itertools.combinations(target["boxes"], 2):
            assert box_iou(a.astype(float), b[None].astype(float))[0] <= 0.1


def test_image_sizes_vary_independently():
    shapes = {ShapesDataset(12, seed=3)[i][0].shape[:2] for i in range(12)}
    assert len({h for h, _ in shapes}) > 3 and any(h != w for h, w in shapes)


@pytest.mark.parametrize("kwargs", [
    {"num_images": 0}, {"num_images": 2, "seed": -1},
    {"num_images": 2, "object_size": (16, 200)},
    {"num_images": 2, "image_size": (300, 200)}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        ShapesDataset(**kwargs)


def test_index_out_of_range():
    ds = ShapesDataset(2)
    with pytest.raises(IndexError, match="index 2"):
        ds[2]
    with pytest.raises(TypeError):
        ds[0.5]
    assert len(ds) == 2 and ds.num_classes == 3
