"""Reuse pretrained weights of chosen scopes from another run (``model.init_from``).

Only the selected parameters are copied; the rest of the new model keeps its fresh initialisation.
``scopes`` are globs over the *checkpoint's* parameter names; ``rename`` maps a checkpoint name
prefix to a prefix in the new model (``{decoder.rnn: encoder.rnn}`` loads a pretrained decoder RNN
into the encoder). The checkpoint is read safely (tensors only, no code).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from qa_seq2seq.decoding.checkpoint import read_checkpoint
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.scopes import match

log = logging.getLogger(__name__)


class WarmStartReport(NamedTuple):
    """What a warm start loaded, and what it skipped and why."""
    loaded: list[tuple[str, str]]  # (checkpoint name, model name)
    missing: list[tuple[str, str]]  # selected, but the model has no such parameter
    mismatched: list[tuple[str, str, tuple, tuple]]  # ... with shapes (checkpoint, model)

    def __str__(self) -> str:
        lines = [f"warm start: {len(self.loaded)} loaded, {len(self.missing)} skipped (not in "
                 f"model), {len(self.mismatched)} shape-mismatched"]
        lines += [f"  loaded     {src} -> {dst}" for src, dst in self.loaded]
        lines += [f"  skipped    {src} -> {dst} (no such parameter)" for src, dst in self.missing]
        lines += [f"  mismatched {src} {tuple(a)} -> {dst} {tuple(b)}"
                  for src, dst, a, b in self.mismatched]
        return "\n".join(lines)


class WarmStart:
    """Loads chosen scopes of another checkpoint's weights into a new model (``model.init_from``)."""
    def __init__(self, checkpoint: str | None, scopes: Sequence[str] = ("*",),
                 rename: Mapping[str, str] | None = None, strict: bool = True):
        """``checkpoint`` None: do nothing. ``strict``: raise if a selected parameter is skipped
        or shape-mismatched."""
        self.checkpoint, self.scopes = checkpoint, list(scopes)
        self.rename, self.strict = dict(rename or {}), strict
        if checkpoint is None and (self.rename or self.scopes != ["*"]):  # never ignore a key
            raise ConfigError("model.init_from.scopes/rename are set but "
                              "model.init_from.checkpoint is not: give the checkpoint (a run "
                              "directory or .ckpt file) to warm start from")

    def __call__(self, model: nn.Module) -> WarmStartReport | None:
        if self.checkpoint is None:
            return None
        source = read_checkpoint(self.checkpoint).state_dict
        selected = sorted({n for found in match(source, self.scopes, "model.init_from.scopes")
                           .values() for n in found})
        targets = dict(model.named_parameters(remove_duplicate=False))
        loaded, missing, mismatched = [], [], []
        with torch.no_grad():
            for src in selected:
                dst = self._renamed(src)
                if dst not in targets:
                    missing.append((src, dst))
                elif targets[dst].shape != source[src].shape:
                    mismatched.append((src, dst, tuple(source[src].shape),
                                       tuple(targets[dst].shape)))
                else:
                    targets[dst].copy_(source[src])
                    loaded.append((src, dst))
        report = WarmStartReport(loaded, missing, mismatched)
        log.info("%s (from %s)", report, self.checkpoint)
        if self.strict and (missing or mismatched):
            raise ConfigError(f"model.init_from: {report}\nFix model.init_from.scopes/rename, "
                             "or set model.init_from.strict=false to load the rest anyway.")
        return report

    def _renamed(self, name: str) -> str:
        for old, new in self.rename.items():
            if name == old or name.startswith(old + "."):
                return new + name[len(old):]
        return name
