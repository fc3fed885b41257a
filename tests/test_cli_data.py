"""The data options of the command line: --skip-invalid, --clip-boxes,
--classes, and the check-data command."""
import json

import pytest

from minirpn.cli import main
from minirpn.cli.commands import parse_classes

from test_cli import TINY
from test_data_coco import write_folder
from test_data_lenient import messy_coco, messy_voc
from test_data_voc import make_voc, obj


@pytest.fixture
def messy(tmp_path):
    """A COCO file with every kind of problem, and a truncated PNG."""
    coco = messy_coco()
    coco["images"].append({"id": 11, "file_name": "c.png", "width": 40,
                           "height": 30})
    path = write_folder(tmp_path / "coco", coco)
    png = (tmp_path / "coco" / "a.png").read_bytes()
    (tmp_path / "coco" / "c.png").write_bytes(png[:len(png) // 2])
    return path


def test_check_data_lists_every_problem(messy, capsys):
    assert main(["check-data", "--data", f"coco:{messy}", "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any("(id 60)" in line and "'bbox'" in line for line in out)
    assert any("(id 61)" in line for line in out)
    assert any("(id 62)" in line for line in out)
    # the truncated file has a good header: only the full decode finds it
    assert any("images[2] (id 11)" in line and "c.png" in line for line in out)
    assert out[-1].endswith("2 usable images, 4 problems")


def test_check_data_with_the_lenient_options(messy, capsys):
    assert main(["check-data", "--data", f"coco:{messy}", "--quiet",
                 "--skip-invalid", "--clip-boxes"]) == 1   # the PNG remains
    captured = capsys.readouterr()
    assert "1 problem" in captured.out.splitlines()[-1]
    assert "clipped boxes overhanging the image: 1" in captured.err
    assert "dropped boxes outside the image: 1" in captured.err


def test_check_data_on_a_clean_dataset_exits_0(tmp_path, capsys):
    make_voc(tmp_path, {"0001": (20, 10, [obj("dog", 1, 1, 9, 9)], None)})
    assert main(["check-data", "--data", f"voc:{tmp_path}", "--quiet"]) == 0
    assert "1 usable images, 0 problems" in capsys.readouterr().out
    assert main(["check-data", "--data", "shapes"]) == 1


def test_train_strict_error_names_the_flag_then_trains_leniently(messy, tmp_path, capsys):
    (tmp_path / "coco" / "c.png").unlink()
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    args = ["train", "--data", f"coco:{messy}", "--config", str(config),
            "--iterations", "2", "--quiet", "--out"]
    assert main(args + [str(tmp_path / "strict")]) == 1
    assert "--skip-invalid" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "run"), "--skip-invalid", "--clip-boxes"]) == 0
    err = capsys.readouterr().err
    assert "dropped images whose file is missing: 1" in err
    assert (tmp_path / "run" / "model.npz").exists()


def test_voc_with_its_own_classes_trains_and_evaluates(tmp_path, capsys):
    records = {"0001": (64, 48, [obj("widget", 5, 5, 30, 30)], None),
               "0002": (64, 48, [obj("gadget", 20, 10, 60, 40)], None)}
    make_voc(tmp_path / "voc", records)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    base = ["train", "--data", f"voc:{tmp_path / 'voc'}", "--config", str(config),
            "--iterations", "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "voc20")]) == 1
    assert "--classes" in capsys.readouterr().err
    (tmp_path / "names.txt").write_text("widget\ngadget\n")
    for classes, out in (("found", "a"), ("widget,gadget", "b"),
                         (str(tmp_path / "names.txt"), "c")):
        assert main(base + ["--classes", classes, "--out", str(tmp_path / out)]) == 0
    capsys.readouterr()
    # evaluate reads VOC data with the checkpoint's classes by default
    assert main(["evaluate", str(tmp_path / "b" / "model.npz"), "--data",
                 f"voc:{tmp_path / 'voc'}", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["per_class"]) <= {"widget", "gadget"}
    assert main(["evaluate", str(tmp_path / "a" / "model.npz"), "--data",
                 f"voc:{tmp_path / 'voc'}", "--classes", "widget,gadget"]) == 1
    assert "class_names" in capsys.readouterr().err   # found = sorted: differ


def test_classes_option_forms(tmp_path):
    assert parse_classes(None) is None and parse_classes("found") == "found"
    assert parse_classes("a, b") == ["a", "b"]
    (tmp_path / "c.txt").write_text("x\n\ny\n")
    assert parse_classes(str(tmp_path / "c.txt")) == ["x", "y"]
    with pytest.raises(ValueError, match="distinct"):
        parse_classes("a,a")
    assert main(["evaluate", "x.npz", "--data", "shapes", "--classes", "a"]) == 1


def test_lenient_voc_zero_based_through_the_cli(tmp_path, capsys):
    make_voc(tmp_path, messy_voc())
    assert main(["check-data", "--data", f"voc:{tmp_path}", "--quiet"]) == 1
    assert "0-based" in capsys.readouterr().out
    assert main(["check-data", "--data", f"voc:{tmp_path}", "--quiet",
                 "--clip-boxes", "--skip-invalid"]) == 0


def test_help_shows_the_data_options():
    from minirpn.cli import build_parser
    parser = build_parser()
    assert "check-data" in parser.format_help()
    for command in ("train", "evaluate", "check-data"):
        sub = parser._subparsers._group_actions[0].choices[command]
        text = sub.format_help()
        assert "--skip-invalid" in text and "--clip-boxes" in text and "--classes" in text
