"""Numeric options checked at start-up, before any data is read: sizes, probabilities, rates.

A value out of range is refused naming its key (``model.net.hidden_size=0 must be an integer >= 1``)
instead of failing later inside torch, or training silently wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qa_seq2seq.errors import ConfigError


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


Rule = tuple[str, Callable[[Any], bool]]
COUNT: Rule = ("an integer >= 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1)
NON_NEGATIVE_COUNT: Rule = ("an integer >= 0",
                            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
PROBABILITY: Rule = ("a probability in [0, 1)", lambda v: _number(v) and 0 <= v < 1)
RATIO: Rule = ("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1)
POSITIVE: Rule = ("a number > 0", lambda v: _number(v) and v > 0)
NON_NEGATIVE: Rule = ("a number >= 0", lambda v: _number(v) and v >= 0)

CELL = {"hidden_size": COUNT, "num_layers": COUNT, "dropout": PROBABILITY,
        "recurrent_dropout": PROBABILITY, "proj_size": NON_NEGATIVE_COUNT}
RULES: dict[str, Rule] = {
    "model.net.embedding_size": COUNT, "model.net.hidden_size": COUNT, "model.net.num_layers": COUNT,
    "model.net.dropout": PROBABILITY, "model.net.thinking_steps": NON_NEGATIVE_COUNT,
    **{f"model.net.{cell}.{key}": rule for cell in ("cell", "encoder_cell", "decoder_cell")
       for key, rule in CELL.items()},
    "optimizer.lr": POSITIVE, "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.momentum": NON_NEGATIVE, "optimizer.decay_from_step": NON_NEGATIVE_COUNT,
    "scheduler.warmup_steps": NON_NEGATIVE_COUNT, "scheduler.min_lr_ratio": RATIO,
    "label_smoothing": PROBABILITY,
    "data.batch_size": COUNT, "data.eval_batch_size": COUNT, "data.max_tokens": COUNT,
    "data.sort_window": COUNT, "data.max_question_length": COUNT,
    "data.max_answer_length": COUNT, "data.shuffle_buffer": COUNT,
    "data.tokenizer.vocab_size": COUNT,
    "trainer.gradient_clip_val": NON_NEGATIVE, "trainer.accumulate_grad_batches": COUNT,
    "trainer.max_epochs": ("an integer >= -1", lambda v: isinstance(v, int) and v >= -1),
    "trainer.max_steps": ("an integer >= -1", lambda v: isinstance(v, int) and v >= -1),
}


def check_ranges(cfg: DictConfig) -> None:
    """Refuse the first key of :data:`RULES` whose value (when set, not null) is out of range."""
    for key, (expected, ok) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r} must be {expected}")
