"""Atomic file writes: a checkpoint is either the old file or the whole new one, never a part.

Lightning's own atomic save writes through a temporary file in ``TMPDIR`` and moves it into
place; when ``TMPDIR`` is on another filesystem (``/dev/shm``, a node-local disk) that move is a
copy, so a kill or a full disk in the middle leaves a truncated checkpoint. Here the temporary
file sits beside its target, is flushed and fsynced, then renamed over it (atomic within one
filesystem); a failed write removes it, and one left by a process killed mid-write goes at the
next save. A write the disk refuses (full, read-only) is a
:class:`CheckpointError` naming the file, and the previous checkpoint is left as it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from qa_seq2seq.errors import CheckpointError


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)``, atomically (see the module docstring)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}: choose a writable "
                              "output_dir") from None
    buffer = io.BytesIO()  # serialised first: torch's writer reports a failed write vaguely
    torch.save(obj, buffer)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(e, OSError):
            raise CheckpointError(f"cannot write {path}: {e.strerror or e}; the previous "
                                  f"checkpoint there, if any, is intact: free space (or choose "
                                  "another output_dir) and resume with resume=auto") from None
        raise
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
        with contextlib.suppress(OSError):
            stale.unlink()
    with contextlib.suppress(OSError):  # the rename itself survives a power cut once its
        directory = os.open(path.parent, os.O_RDONLY)  # directory entry is on disk
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO for torch files, writing local paths with :func:`atomic_save`
    (remote URLs keep Lightning's way)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save(checkpoint, path)
