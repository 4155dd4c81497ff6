"""Test-only Lightning callbacks, instantiated from config overrides in subprocess tests."""

import os
import signal
from pathlib import Path

import lightning.pytorch as L


class KillAt(L.Callback):
    """SIGKILL this process (no cleanup at all) after training step ``step``, once per ``marker``."""

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Send ``signal`` (a name, e.g. SIGTERM) to this process as training step ``step`` starts,
    once per ``marker``."""

    def __init__(self, step: int, signal: str, marker: str):
        self.step, self.signal, self.marker = step, signal, Path(marker)

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step >= self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), getattr(signal, self.signal))


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
    """Write this process's rows seen and a checksum of its final weights to ``folder``."""

    def __init__(self, folder: str):
        self.folder, self.rows = Path(folder), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows += batch.index.tolist()

    def on_train_end(self, trainer, pl_module):
        import json

        checksum = sum(float(p.double().sum()) for p in pl_module.parameters())
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(
            json.dumps({"rows": self.rows, "checksum": checksum}))


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
