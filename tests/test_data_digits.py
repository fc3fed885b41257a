"""The "digits" dataset (needs the optional extra minirpn[data])."""
import itertools
import os
import sys

import numpy as np
import pytest

from minirpn.data import DIGIT_CLASSES, DigitsDataset
from minirpn.data.synth import box_iou


def test_missing_extras_name_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install minirpn\[data\]"):
        DigitsDataset(2)


@pytest.fixture(scope="module")
def rendered():
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")
    from minirpn.data import render_digits
    return [render_digits(np.random.default_rng([3, i])) for i in range(8)]


def test_backgrounds_ship_with_the_packages():
    pytest.importorskip("skimage")
    from minirpn.data.digits import background_files
    files = background_files()
    assert len(files) == 8
    for path in files:
        assert os.path.isfile(path), path


def test_same_seed_same_items_in_any_order():
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")
    a, b = DigitsDataset(3, seed=4), DigitsDataset(3, seed=4)
    later = b[2], b[0]
    for (ia, ta), (ib, tb) in zip((a[2], a[0]), later):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ta["boxes"], tb["boxes"])
        np.testing.assert_array_equal(ta["labels"], tb["labels"])


def test_ranges_and_types(rendered):
    seen = set()
    for image, target, masks in rendered:
        h, w = image.shape[:2]
        assert image.dtype == np.uint8 and image.shape[2] == 3
        assert 128 <= h <= 320 and 128 <= w <= 320
        assert 1 <= len(target["labels"]) <= 6
        assert target["boxes"].dtype == np.float32
        assert target["labels"].dtype == np.int64
        assert ((target["labels"] >= 1) & (target["labels"] <= 10)).all()
        seen |= set(target["labels"].tolist())
        boxes = target["boxes"]
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 2] <= w).all()
        assert (boxes[:, 3] > boxes[:, 1]).all() and (boxes[:, 3] <= h).all()
        # Strokes of a 24..80 px digit: never tiny, never above 80 * 1.12.
        sides = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
        assert (sides >= 8).all() and (sides <= 90).all()
    assert len(seen) >= 5 and len(DIGIT_CLASSES) == 10


def test_boxes_are_tight_on_the_digit_masks(rendered):
    for _, target, masks in rendered:
        for box, mask in zip(target["boxes"], masks):
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1,
                                    rows[-1] + 1]


def test_overlap_stays_low(rendered):
    for _, target, _ in rendered:
        for a, b in itertools.combinations(target["boxes"], 2):
            assert box_iou(a.astype(float), b[None].astype(float))[0] <= 0.1
