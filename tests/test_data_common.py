"""Image reading, targets, subsets and splits."""
import sys

import numpy as np
import pytest
from PIL import Image

from minirpn.data import (ShapesDataset, Subset, drop_difficult, make_target,
                          read_image, split_indices, write_png)


def test_importing_the_package_needs_no_extras():
    code = ("import sys; sys.modules['sklearn'] = None; "
            "sys.modules['skimage'] = None; import minirpn.data")
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def grey():
    return np.arange(12, dtype=np.uint8).reshape(3, 4) * 20


def test_rgb_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3),
                                              dtype=np.uint8)
    write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), image)


def test_grey_reads_as_three_equal_channels(tmp_path, grey):
    Image.fromarray(grey).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], grey)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0          # fully transparent red
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png")[..., 0], 200)
    Image.fromarray(rgba[..., [0, 3]]).save(tmp_path / "la.png")   # mode LA
    assert read_image(tmp_path / "la.png").shape == (2, 2, 3)


def test_palette_images(tmp_path, grey):
    img = Image.fromarray(np.stack([grey] * 3, axis=2)).convert(
        "P", palette=Image.Palette.ADAPTIVE)
    img.save(tmp_path / "p.png")
    img.save(tmp_path / "pt.png", transparency=0)
    expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)
    np.testing.assert_array_equal(read_image(tmp_path / "pt.png"), expected)


def test_sixteen_bit_grey_is_scaled(tmp_path):
    grey16 = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png")[0, :, 1],
                                  [0, 1, 255])


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.png"):
        read_image(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match="f.tiff.*float"):
        read_image(tmp_path / "f.tiff")


def test_write_png_checks_its_input(tmp_path):
    with pytest.raises(TypeError, match="uint8"):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="image must have shape"):
        write_png(tmp_path / "x.png", np.zeros((2, 2), np.uint8))


def test_make_target_dtypes_and_empty():
    t = make_target([], [])
    assert t["boxes"].shape == (0, 4) and t["boxes"].dtype == np.float32
    assert t["labels"].shape == (0,) and t["labels"].dtype == np.int64
    assert t["difficult"].dtype == bool
    with pytest.raises(ValueError, match="same length"):
        make_target([[0, 0, 1, 1]], [1, 2])


def test_drop_difficult():
    t = make_target([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], [1, 2, 3],
                    [False, True, False], image_id=4)
    kept = drop_difficult(t)
    assert kept["labels"].tolist() == [1, 3] and kept["image_id"] == 4
    np.testing.assert_array_equal(kept["boxes"], [[0, 0, 1, 1], [2, 2, 3, 3]])
    assert not kept["difficult"].any() and len(t["labels"]) == 3


def test_subset_maps_indices():
    ds = ShapesDataset(5, seed=1)
    sub = Subset(ds, [4, 0, -1])
    assert len(sub) == 3 and sub.class_names == ds.class_names
    np.testing.assert_array_equal(sub[0][0], ds[4][0])
    np.testing.assert_array_equal(sub[2][1]["boxes"], ds[4][1]["boxes"])
    assert sub[-2][1]["image_id"] == 0
    with pytest.raises(IndexError, match=r"indices\[1\]"):
        Subset(ds, [0, 5])


def test_split_indices_partition_and_seed():
    train, val = split_indices(10, 0.3, np.random.default_rng(0))
    assert len(val) == 3 and len(train) == 7
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert train.dtype == np.int64 and (np.diff(train) > 0).all()
    again = split_indices(10, 0.3, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], val)
    assert len(split_indices(4, 0.0)[1]) == 0
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(4, 1.5)
