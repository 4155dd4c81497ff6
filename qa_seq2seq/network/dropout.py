"""Inverted dropout with a faster CPU mask: the function every dropout of the network goes
through (embeddings, decoder outputs, between the layers of the loop path and of
``attend_from=bottom``), and its module.

torch draws CPU random numbers one at a time on one thread, and ``bernoulli_`` spends a 64-bit
draw and more per unit; this mask takes three 16-bit words from each 64-bit draw (p in steps of
1/65536), several times fewer draws. On other devices, torch's own kernel. torch's fused RNN
kernels keep their own dropout between layers.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The mask reads the three low 16-bit words of each int64 in memory order: little-endian only.
_WORDS_IN_ORDER = sys.byteorder == "little"


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)``: zeros with probability p, the rest scaled by 1/(1-p)."""
    if not training or p in (0.0, 1.0) or x.device.type != "cpu" or not _WORDS_IN_ORDER:
        return F.dropout(x, p, training)
    n = x.numel()
    # random_ fills int64 with [0, 2^63): the three low 16-bit words are uniform.
    words = torch.empty((n + 2) // 3, dtype=torch.int64).random_().view(torch.int16)
    words = words.view(-1, 4)[:, :3].reshape(-1)[:n].view(x.shape)  # uniform in [-2^15, 2^15)
    keep = words.ge(round(p * 65536) - 32768)
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` through :func:`dropout`."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
