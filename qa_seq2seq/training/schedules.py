"""Schedules by training step: the learning rate (``scheduler=``) and teacher forcing
(``scheduled_sampling``).

Learning-rate schedules are ``_partial_`` functions called by the LightningModule with the
optimizer and the real number of optimizer steps (``trainer.estimated_stepping_batches``, which
covers ``max_epochs``, ``max_steps`` and gradient accumulation); each returns Lightning's
``lr_scheduler`` dict:

- ``warmup_decay``: linear warmup over ``warmup_steps``, then ``cosine`` or ``linear`` decay
  until the last step, ending at ``min_lr_ratio`` x the base rate, or ``constant`` (the base
  rate to the end: ``scheduler=warmup``, which needs no step count); with ``decay_fraction`` < 1
  the rate stays at its peak until the last fraction of the steps and decays over those only
  (warmup-stable-decay: Hu et al. 2024, Hägele et al. 2024);
- ``plateau``: ``ReduceLROnPlateau`` on ``val/exact_match`` (fits wall-clock budgets, where the
  number of steps is not known in advance).
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from qa_seq2seq.errors import ConfigError

DECAYS = ("cosine", "linear", "constant")


def warmup_decay(optimizer: Optimizer, total_steps: float, decay: str = "cosine",
                 warmup_steps: int = 0, min_lr_ratio: float = 0.0,
                 decay_fraction: float = 1.0) -> dict[str, Any]:
    """lr(step) = base x factor(step), stepped after every optimizer step."""
    if decay not in DECAYS:
        raise ConfigError(f"scheduler.decay={decay!r}: use one of {DECAYS}")
    if decay == "constant" and min_lr_ratio:
        raise ConfigError(f"scheduler.min_lr_ratio={min_lr_ratio} does nothing with decay=constant:"
                          " remove it, or choose decay=cosine|linear")
    if decay == "constant" and decay_fraction != 1.0:
        raise ConfigError(f"scheduler.decay_fraction={decay_fraction} does nothing with "
                          "decay=constant: remove it, or choose decay=cosine|linear")
    if warmup_steps < 0 or not 0.0 <= min_lr_ratio <= 1.0 or not 0.0 < decay_fraction <= 1.0:
        raise ConfigError(f"scheduler: warmup_steps must be >= 0 (got {warmup_steps}), "
                          f"min_lr_ratio in [0, 1] (got {min_lr_ratio}) and decay_fraction in "
                          f"(0, 1] (got {decay_fraction})")
    if decay != "constant" and not math.isfinite(total_steps):
        raise ConfigError(f"scheduler decay={decay} needs a known number of training steps: set "
                          "trainer.max_epochs or trainer.max_steps (a trainer.max_time budget "
                          "alone does not give one); or use scheduler=plateau")
    if warmup_steps >= total_steps:
        raise ConfigError(f"scheduler.warmup_steps={warmup_steps} is not below the "
                          f"{total_steps:.0f} training steps: the warmup would not end before training "
                          "does; lower scheduler.warmup_steps (or choose scheduler=none)")
    total = int(total_steps) if math.isfinite(total_steps) else 0
    # the decay's first step: right after warmup, or later with a stable phase in between
    start = max(warmup_steps, total - round(decay_fraction * (total - warmup_steps)))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min(1.0, max(0, step - start) / max(1, total - start))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
        return min_lr_ratio + (1 - min_lr_ratio) * shape

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}


def plateau(optimizer: Optimizer, total_steps: float, factor: float = 0.5, patience: int = 2,
            min_lr: float = 1e-5, monitor: str = "val/exact_match") -> dict[str, Any]:
    """Multiply the rate by ``factor`` after ``patience`` epochs without a new best ``monitor``
    (stepped at each epoch's end, on the latest validation)."""
    if not 0.0 < factor < 1.0:
        raise ConfigError(f"scheduler.factor must be in (0, 1), got {factor}")
    scheduler = ReduceLROnPlateau(optimizer, mode="max", factor=factor, patience=patience,
                                  min_lr=min_lr)
    return {"scheduler": scheduler, "monitor": monitor, "interval": "epoch"}


TEACHER_FORCING_DECAYS = ("none", "linear", "exponential", "inverse_sigmoid")


class TeacherForcing:
    """Probability of feeding the gold previous token at training step ``step`` (Bengio et al.
    2015); the rest of the time the decoder reads its own prediction.

    - ``none``: 1 (plain teacher forcing, the fused fast path);
    - ``linear``: ``1 - step / steps``;
    - ``exponential``: ``k ** step`` (0 < k < 1, e.g. 0.9995);
    - ``inverse_sigmoid``: ``k / (k + exp(step / k))`` (k >= 1, e.g. 1000).

    Never below ``min_probability``.
    """

    def __init__(self, decay: str = "none", k: float | None = None, steps: int | None = None,
                 min_probability: float = 0.0):
        if decay not in TEACHER_FORCING_DECAYS:
            raise ConfigError(f"scheduled_sampling.decay={decay!r}: use one of "
                              f"{TEACHER_FORCING_DECAYS}")
        uses = {"none": (), "linear": ("steps",), "exponential": ("k",),
                "inverse_sigmoid": ("k",)}[decay]
        for key, value in (("k", k), ("steps", steps)):
            if (value is None) == (key in uses):
                what = "is needed" if value is None else "does nothing"
                raise ConfigError(f"scheduled_sampling.{key} {what} with decay={decay}: choose "
                                  f"scheduled_sampling={decay} and set only its keys "
                                  f"({', '.join(uses) or 'none'})")
        if decay == "exponential" and not 0.0 < k < 1.0:
            raise ConfigError(f"scheduled_sampling.decay=exponential needs 0 < k < 1, got k={k}")
        if decay == "inverse_sigmoid" and k < 1.0:
            raise ConfigError(f"scheduled_sampling.decay=inverse_sigmoid needs k >= 1, got k={k}")
        if decay == "linear" and steps < 1:
            raise ConfigError(f"scheduled_sampling.steps must be >= 1, got {steps}")
        if not 0.0 <= min_probability <= 1.0:
            raise ConfigError(f"scheduled_sampling.min_probability must be in [0, 1], got "
                              f"{min_probability}")
        self.decay, self.k, self.steps, self.min_probability = decay, k, steps, min_probability

    def __call__(self, step: int) -> float:
        if self.decay == "none":
            return 1.0
        if self.decay == "linear":
            p = 1.0 - step / self.steps
        elif self.decay == "exponential":
            p = self.k**step
        else:
            p = self.k / (self.k + math.exp(min(step / self.k, 700.0)))
        return max(self.min_probability, p)
