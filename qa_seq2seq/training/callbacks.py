"""The Lightning callbacks the training config names (``conf/callbacks/default.yaml``): stopping
cleanly on a signal, recording the data files a run trains on, and checkpoints that follow a
moved run."""

from __future__ import annotations

import hashlib
import logging
import signal
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Training stopped on a signal after saving ``last.ckpt`` at the step reached."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}: saved "
                         f"{checkpoint}; continue with resume=auto (or resume=<run directory>)")


class GracefulStop(L.Callback):
    """On SIGINT (Ctrl-C) or SIGTERM, finish the current step, save ``checkpoint`` (``last.ckpt``)
    at that point of the epoch and raise :class:`Stopped`. The epoch is not closed (no epoch-end
    validation, no early-stopping count), so a resumed run equals an uninterrupted one. A second
    signal stops at once."""

    def __init__(self, checkpoint: str) -> None:
        self.checkpoint = Path(checkpoint)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # second signal: give up on stopping cleanly
            self._restore()
            raise KeyboardInterrupt
        self.received = signum
        log.warning("received %s: stopping after this step and saving %s (again to stop at "
                    "once)", signal.Signals(signum).name, self.checkpoint)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # Where ModelCheckpoint(every_n_train_steps) saves: the same mid-epoch position, which
        # resume continues from exactly (a signal during validation lands here after it).
        if self.received is not None:
            trainer.save_checkpoint(self.checkpoint, weights_only=False)
            raise Stopped(self.received, trainer.global_step, self.checkpoint)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def fingerprint(file: str) -> dict[str, Any]:
    """A data file as a resume checks it: its path, size and SHA-256."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"path": str(file), "size": Path(file).stat().st_size, "sha256": digest.hexdigest()}


class DataFiles(L.Callback):
    """Stores the training and validation files' fingerprints in every checkpoint, so that a
    resume can tell a file that changed under the run (see :func:`check_data_files`)."""

    def __init__(self, files: dict[str, str | None]):
        self.files = {split: fingerprint(file) for split, file in files.items()
                      if split in ("train", "validation") and file and Path(file).is_file()}

    def state_dict(self) -> dict[str, Any]:
        return {"files": self.files}


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, whose saved state follows the run when its directory is
    moved or copied: Lightning drops the best score of a checkpoint saved under another
    directory, so the next validation, however worse, would overwrite ``best.ckpt``. Paths
    saved inside the old directory are read as the same files in the new one."""

    @property
    def state_key(self) -> str:  # ModelCheckpoint's: checkpoints from before this class load
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and Path(old) != Path(self.dirpath):
            def moved(path: str | None) -> str | None:
                if path and Path(path).parent == Path(old):
                    return str(Path(self.dirpath) / Path(path).name)
                return path

            state_dict = {**state_dict, "dirpath": self.dirpath,
                          "best_k_models": {moved(k): v for k, v in
                                            state_dict.get("best_k_models", {}).items()},
                          **{key: moved(state_dict.get(key)) for key in
                             ("best_model_path", "kth_best_model_path", "last_model_path")}}
            log.info("the run moved from %s: its checkpoint state follows it to %s", old,
                     self.dirpath)
        super().load_state_dict(state_dict)
