"""Strict, lenient and checking modes of the file loaders, and their report.

Real annotation files hold records that a strict loader refuses: a box of
zero width, a box that overhangs its image by half a pixel, a 0 in a VOC
file written by a 0-based tool, an image file that is missing. COCO's own
tools and torchvision's reference training (``ConvertCocoPolysToMask``)
clip every box to its image and silently drop the empty ones; detectron2
does the same (``Boxes.clip``, ``filter_empty_instances``). minirpn stays
strict by default and does either only when asked, and then says what it
did:

* ``clip=True``: a box that overhangs its image is clipped to it;
* ``skip_invalid=True``: a record that cannot be used (a box with zero or
  negative width or height, a box outside the image, an image whose file is
  missing, unreadable or of another size than annotated) is left out;
* ``collect_problems=True``: nothing is raised for a bad record; every
  problem is recorded and the record left out (``minirpn check-data``).

What was dropped or clipped, per reason, is in the loader's ``report``
(a :class:`LoadReport`). A malformed file (not JSON or XML, a field
missing or of the wrong type, an id that refers to nothing) is refused in
every mode but the checking one: it is a broken file, not messy data.
"""
import contextlib
import os

from .images import read_image_size, size_mismatch_error, verify_image_file

__all__ = ["LoadReport", "RecordPolicy", "clip_box", "check_image_file",
           "verify_image_files"]

#: The reasons a lenient loader leaves a record out or changes it.
ZERO_SIZE = "boxes with zero or negative width or height"
OUTSIDE = "boxes outside the image"
OVERHANG = "boxes overhanging the image"
UNKNOWN_CLASS = "objects of a class not in class_names"
MISSING_FILE = "images whose file is missing"
UNREADABLE = "images whose file cannot be read"
WRONG_SIZE = "images whose file size differs from the annotation"

SKIP_HINT = ("pass skip_invalid=True (minirpn: --skip-invalid) to leave "
             "such records out")
CLIP_HINT = ("pass clip=True (minirpn: --clip-boxes) to clip such boxes to "
             "the image, or skip_invalid=True (--skip-invalid) to leave them "
             "out")


class LoadReport:
    """What a loader left out or changed, per reason, with the messages.

    Attributes
    ----------
    dropped : dict of str -> list of str
        Reason (e.g. ``"boxes outside the image"``) -> one message per
        record left out, naming the file, the record and the field.
    clipped : dict of str -> list of str
        Reason -> one message per box clipped to its image.
    problems : list of str
        Every problem found in checking mode (``collect_problems=True``).
    """

    def __init__(self):
        self.dropped, self.clipped, self.problems = {}, {}, []

    def __bool__(self):
        return bool(self.dropped or self.clipped or self.problems)

    @property
    def counts(self):
        """dict: ``"dropped: <reason>"`` / ``"clipped: <reason>"`` -> count."""
        return {**{f"dropped: {r}": len(m) for r, m in self.dropped.items()},
                **{f"clipped: {r}": len(m) for r, m in self.clipped.items()}}

    def summary(self, name="data"):
        """One line per reason, with its count and the first example."""
        lines = []
        for verb, entries in (("dropped", self.dropped),
                              ("clipped", self.clipped)):
            for reason, messages in entries.items():
                lines.append(f"{name}: {verb} {reason}: {len(messages)} "
                             f"(first: {messages[0]})")
        return "\n".join(lines)

    def __repr__(self):
        return f"LoadReport({self.counts}, {len(self.problems)} problems)"


class _Skipped(Exception):
    """The record at hand is left out (handled by RecordPolicy.record)."""


class RecordPolicy:
    """How a loader treats a record it cannot use; fills a LoadReport.

    Parameters
    ----------
    skip_invalid, clip, collect_problems : bool
        The loader's options of the same names (see the module docstring).
    """

    def __init__(self, skip_invalid=False, clip=False, collect_problems=False):
        self.skip_invalid, self.clip = bool(skip_invalid), bool(clip)
        self.collect = bool(collect_problems)
        self.report = LoadReport()

    @contextlib.contextmanager
    def record(self):
        """Around the parsing of one record: a record that :meth:`invalid`
        leaves out is skipped; in checking mode any ValueError or OSError
        is recorded as a problem and the record skipped."""
        try:
            yield
        except _Skipped:
            pass
        except (ValueError, OSError) as exc:
            if not self.collect:
                raise
            self.report.problems.append(str(exc))

    def invalid(self, error, reason, hint=SKIP_HINT):
        """A record that cannot be used: raise ``error`` (with ``hint``) in
        strict mode, else record it and leave the record out (only valid
        inside :meth:`record`)."""
        if self.skip_invalid:
            self.report.dropped.setdefault(reason, []).append(str(error))
        elif self.collect:
            self.report.problems.append(str(error))
        else:
            raise type(error)(f"{error}; {hint}") from None
        raise _Skipped()

    def clipped(self, message):
        """Record that the box ``message`` describes was clipped."""
        self.report.clipped.setdefault(OVERHANG, []).append(message)


def clip_box(box, width, height):
    """[x1, y1, x2, y2] clipped to the (width x height) image; may come out
    empty (x2 <= x1 or y2 <= y1) for a box outside the image."""
    return [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]


def check_image_file(policy, path, size, where, size_source):
    """Check from its header (no decoding) that an annotated image file
    exists, is an image and has the annotated (H, W) ``size``; a failure
    goes to ``policy.invalid`` with its reason. ``where`` and
    ``size_source`` start and fill in the messages, as for
    :func:`minirpn.data.images.read_annotated_image`."""
    if not os.path.isfile(path):
        policy.invalid(FileNotFoundError(
            f"{where}: image file not found: {path}"), MISSING_FILE)
    try:
        got = read_image_size(path)
    except (OSError, ValueError) as exc:
        policy.invalid(ValueError(f"{where}: {exc}"), UNREADABLE)
    if got != tuple(size):
        policy.invalid(size_mismatch_error(where, path, got, size, size_source),
                       WRONG_SIZE)


def verify_image_files(dataset, progress=False):
    """Decode every image file of a COCO or VOC dataset completely.

    Building a dataset reads each file's header only; this is the full
    check (Pillow's ``verify`` and a complete decode, as training reads the
    file), for ``minirpn check-data``.

    Parameters
    ----------
    dataset : CocoDataset or VocDataset
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    problems : list of str
        One message per bad file, naming the annotation and the file.
    """
    from tqdm import tqdm
    problems = []
    for i in tqdm(range(len(dataset)), desc="decoding images",
                  disable=not progress, leave=False):
        try:
            verify_image_file(*dataset._annotated_file(i))
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    return problems
