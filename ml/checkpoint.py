"""Atomic, checksummed checkpoints (temporary file, fsync, ``os.replace``, sha256 beside it)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "ml.checkpoint/1"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> str:
    """Write ``state`` so that a crash never leaves a half-written checkpoint at ``path``.

    The payload is written to a temporary file in the same folder, fsynced and renamed over
    ``path``; its sha256 then goes to ``path + ".sha256"`` the same way. A reader that finds the
    two disagreeing (a crash between the renames) sees a checksum error, never bad weights.

    Args:
        state: tensors and plain Python values (``torch.load(weights_only=True)`` must read it).
        path: destination.

    Returns:
        The file's sha256 (hex).
    """
    path = Path(path)
    payload = {"format": FORMAT, **state}
    _atomic_write(path, lambda handle: torch.save(payload, handle))
    digest = sha256_file(path)
    sidecar = path.with_name(path.name + ".sha256")
    _atomic_write(sidecar, lambda handle: handle.write(f"{digest}  {path.name}\n".encode()))
    return digest


class ChecksumError(RuntimeError):
    """A checkpoint's bytes do not match the sha256 written beside it."""


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", verify: bool = True
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint.
        map_location: where tensors land.
        verify: check the sha256 sidecar when it exists.

    Returns:
        The saved dict (with ``format``).

    Raises:
        ChecksumError: the file does not match its recorded sha256.
        ValueError: the file is not an ``ml`` checkpoint.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if verify and sidecar.exists():
        expected = sidecar.read_text().split()[0]
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(f"{path}: sha256 {actual} does not match {expected}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an {FORMAT} checkpoint")
    return state


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model stored in a training checkpoint, in eval mode.

    Returns:
        ``(model, checkpoint_dict)``.
    """
    from ml.models import create_model

    state = load_checkpoint(path, map_location=map_location)
    model = create_model(state["model_name"], **state["model_config"])
    model.load_state_dict(state["model"])
    return model.eval(), state
