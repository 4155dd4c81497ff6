"""An exponential moving average of the weights (``callbacks.ema``), on Lightning's
``WeightAveraging``.

Training updates the raw weights; after every optimizer step the average moves towards them:
``avg = d * avg + (1 - d) * w``. Validation, ``best.ckpt`` and everything that reads a checkpoint
(evaluate, the decoding CLI, export, warm starts) see the average, which is where the
fluctuations of a constant learning rate cancel out; checkpoints also keep the raw weights
(``current_model_state``), so a resumed run continues exactly. The decay warms up as TensorFlow's
``ExponentialMovingAverage(num_updates=n)`` does, ``d = min(decay, (1 + n) / (10 + n))``, so the
average of a short run is not its initial weights.
"""

from __future__ import annotations

from functools import partial

import lightning.pytorch as L
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor

from qa_seq2seq.compatibility import lerp_all_
from qa_seq2seq.errors import ConfigError


def ema_decay(decay: float, updates: int) -> float:
    """The decay of the update after ``updates`` earlier ones."""
    return min(decay, (1 + updates) / (10 + updates))


def _ema_(averaged: list[Tensor], current: list[Tensor], updates: Tensor, decay: float) -> None:
    """In place, all tensors at once: ``averaged <- d * averaged + (1 - d) * current``; buffers
    that are not floating point (which pieces are digits, a count) are copied, not averaged."""
    floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
    for a, c in zip(averaged, current):
        if not a.is_floating_point():
            a.copy_(c)
    if floats:
        lerp_all_(*map(list, zip(*floats)), 1.0 - ema_decay(decay, int(updates)))


class EMA(WeightAveraging):
    """An exponential moving average of the weights, used for validation and checkpoints.

    Args:
        decay: the most weight the average keeps per step (0.998: about the last 500 steps).
    """

    def __init__(self, decay: float = 0.998):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"callbacks.ema.decay must be in (0, 1), got {decay}; e.g. 0.998 "
                              "(about the last 500 steps), or drop the average with ~callbacks.ema")
        super().__init__(multi_avg_fn=partial(_ema_, decay=decay))
        self.decay = decay

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep training's own weights in the module (Lightning would copy the average in): the
        last checkpoint, saved after the fit, then stores both, and resuming it to train further
        continues from the raw weights as an uninterrupted run does."""
