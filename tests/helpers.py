"""Test-only Lightning callbacks, instantiated from config overrides in subprocess tests."""

import os
import signal as signal_module
from pathlib import Path

import lightning.pytorch as L


class InterruptAt(L.Callback):
    """Send ``signal`` (SIGKILL, SIGTERM, SIGINT) to this process once per ``marker``, at the first
    ``at`` event from training step ``step`` on: ``train_batch`` (as a step starts),
    ``validation`` (in a validation batch), ``save`` (while a checkpoint is being made), or
    ``epoch_end``."""

    def __init__(self, step: int, marker: str, signal: str = "SIGKILL", at: str = "train_batch"):
        self.step, self.marker, self.at = step, Path(marker), at
        self.signal = getattr(signal_module, signal)

    def _maybe(self, event: str, trainer) -> None:
        if event == self.at and trainer.global_step >= self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), self.signal)

    def on_train_batch_start(self, trainer, *args):
        self._maybe("train_batch", trainer)

    def on_validation_batch_start(self, trainer, *args):
        self._maybe("validation", trainer)

    def on_save_checkpoint(self, trainer, *args):
        self._maybe("save", trainer)

    def on_train_epoch_end(self, trainer, *args):
        self._maybe("epoch_end", trainer)


class PoisonGradients(L.Callback):
    """Make every gradient NaN after backward at training steps >= ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step >= self.step:
            for p in pl_module.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))


class RecordRank(L.Callback):
    """Write this process's rows seen, its validation metrics and a checksum of its final
    weights to ``folder``."""

    def __init__(self, folder: str):
        self.folder, self.rows, self.val_loss = Path(folder), [], []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val_loss.append(float(trainer.callback_metrics["val/loss"]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows += batch.index.tolist()

    def on_train_end(self, trainer, pl_module):
        import json

        checksum = sum(float(p.double().sum()) for p in pl_module.parameters())
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(
            json.dumps({"rows": self.rows, "checksum": checksum, "val_loss": self.val_loss}))


class PoisonLoss(L.Callback):
    """Make the loss NaN from training step ``step`` on (a NaN in the output bias)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            pl_module.net.decoder.output.bias.data[0] = float("nan")


class RecordLR(L.Callback):
    """Write the learning rate of every optimizer step to ``path`` (JSON list) at the end."""

    def __init__(self, path: str):
        self.path, self.rates = Path(path), []

    def on_train_batch_start(self, trainer, *args):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_end(self, trainer, pl_module):
        import json

        self.path.write_text(json.dumps(self.rates))


class RecordWeights(L.Callback):
    """Save to ``path`` (torch.save) the network's weights after every optimizer step
    (``steps``), those the first validation batch of each validation ran with (``validated``),
    and those the module holds when the fit ends (``final``)."""

    def __init__(self, path: str):
        self.path, self.steps, self.validated = Path(path), [], []

    @staticmethod
    def _copy(pl_module):
        return {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.steps.append(self._copy(pl_module))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args):
        if batch_idx == 0 and not trainer.sanity_checking:
            self.validated.append((trainer.global_step, self._copy(pl_module)))

    def on_train_end(self, trainer, pl_module):
        import torch

        torch.save({"steps": self.steps, "validated": self.validated,
                    "final": self._copy(pl_module)}, self.path)


class LimitFileSize(L.Callback):
    """From training step ``step`` on, refuse writes past ``limit`` bytes in any file
    (RLIMIT_FSIZE): with ``kill`` the process dies in the middle of its next large write
    (SIGXFSZ), as with ``kill -9`` during a save; without, the write fails (EFBIG), as on a full
    disk. Once per ``marker`` (a resumed run with the same config passes by)."""

    def __init__(self, step: int, limit: int, kill: bool, marker: str):
        self.step, self.limit, self.kill, self.marker = step, limit, kill, Path(marker)

    def on_train_batch_start(self, trainer, *args):
        import resource

        if trainer.global_step == self.step and not self.marker.exists():  # once per marker
            self.marker.touch()
            # Python ignores SIGXFSZ (writes fail instead); its default action ends the process.
            if self.kill:
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
                signal_module.signal(signal_module.SIGXFSZ, signal_module.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_FSIZE,
                               (self.limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
