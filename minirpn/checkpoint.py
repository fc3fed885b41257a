"""Checkpoints: one ``.npz`` with the parameters, the config and a version.

The file is written to a temporary name in the same folder and renamed into
place, so a crash mid-write never leaves a half-written checkpoint under the
real name. Loading uses ``allow_pickle=False``: a checkpoint holds arrays and
one JSON string, never code.
"""
import os
import re
import tempfile
import zipfile

import numpy as np

from .backend import to_numpy
from .config import Config

__all__ = ["FORMAT_VERSION", "save_checkpoint", "load_checkpoint",
           "remove_orphaned_temporaries"]

FORMAT_VERSION = 1
_PARAM = "param/"
#: save_checkpoint's temporary names: tempfile.mkstemp(prefix=".tmp-",
#: suffix=".npz") adds 8 characters from tempfile's alphabet [a-z0-9_].
_TMP_PREFIX, _TMP_SUFFIX = ".tmp-", ".npz"
_TMP_NAME = re.compile(r"\.tmp-[a-z0-9_]{8}\.npz")
#: Every .npz is a zip archive; these are the zip signatures it may start with.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def save_checkpoint(path, config, parameters, extra=None):
    """Atomically write a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, conventionally ``model.npz``.
    config : Config
    parameters : dict of str -> array
        Parameter arrays (numpy or cupy) by dotted name.
    extra : dict of str -> array, optional
        More arrays to store (e.g. optimizer state), under their own names.
    """
    path = os.fspath(path)
    arrays = {_PARAM + k: to_numpy(v) for k, v in parameters.items()}
    arrays.update({k: to_numpy(v) for k, v in (extra or {}).items()})
    arrays["config_json"] = np.array(config.to_json())
    arrays["format_version"] = np.array(FORMAT_VERSION)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path, with_extra=False):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    config : Config
    parameters : dict of str -> numpy array
    extra : dict of str -> numpy array
        Only when ``with_extra``.

    Raises
    ------
    FileNotFoundError
        "checkpoint not found: PATH".
    ValueError
        If the file is truncated, not an ``.npz``, or not a minirpn checkpoint
        (the message names the file and what is wrong).
    """
    path = os.fspath(path)
    _check_is_npz(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npz checkpoint "
                         f"(truncated or foreign file: {exc})") from exc
    if "config_json" not in contents or "format_version" not in contents:
        raise ValueError(f"{path}: not a minirpn checkpoint "
                         "(no config_json / format_version entries)")
    version = int(contents.pop("format_version"))
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, "
                         f"this minirpn reads version {FORMAT_VERSION}")
    try:
        config = Config.from_json(str(contents.pop("config_json")))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: field config_json: {exc}") from exc
    params = {k[len(_PARAM):]: v for k, v in contents.items() if k.startswith(_PARAM)}
    extra = {k: v for k, v in contents.items() if not k.startswith(_PARAM)}
    return (config, params, extra) if with_extra else (config, params)


def _check_is_npz(path):
    """Name the file's problem before np.load does: a missing file would give
    a bare "[Errno 2]", and any non-zip file (JSON, .npy, a PNG) numpy's
    advice to pass ``allow_pickle=True``, which a checkpoint never needs."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a minirpn checkpoint (.npz file)")
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in _ZIP_MAGIC:
        raise ValueError(f"{path}: not a minirpn checkpoint (a checkpoint is an .npz "
                         f"zip archive; this file starts with {head!r})")


def remove_orphaned_temporaries(folder):
    """Delete the temporary files a killed :func:`save_checkpoint` left in
    ``folder`` (names ``.tmp-XXXXXXXX.npz``, nothing else).

    A ``kill -9`` between ``mkstemp`` and ``os.replace`` leaves one behind;
    the checkpoint under the real name is intact, so the temporary file is
    garbage. Call this only where no other process is writing.

    Returns
    -------
    list of str
        The paths removed.
    """
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _TMP_NAME.fullmatch(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed
