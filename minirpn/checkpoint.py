"""Checkpoints: one ``.npz`` with the parameters, the config and a version.

The file is written to a temporary name in the same folder and renamed into
place, so a crash mid-write never leaves a half-written checkpoint under the
real name. Loading uses ``allow_pickle=False``: a checkpoint holds arrays and
one JSON string, never code.
"""
import os
import tempfile
import zipfile

import numpy as np

from .backend import to_numpy
from .config import Config

__all__ = ["FORMAT_VERSION", "save_checkpoint", "load_checkpoint"]

FORMAT_VERSION = 1
_PARAM = "param/"


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
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
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
    ValueError
        If the file is truncated, not an ``.npz``, or not a minirpn checkpoint
        (the message names the file and what is wrong).
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
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
