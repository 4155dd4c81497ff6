"""Copying that continues a span (``model.net.copy_span``): names copied whole, piece after piece.

A name the tokenizer never saw as a whole comes out in several pieces (``▁Gin`` ``or`` ``tel``).
Copy attention alone must learn, for every step, to look one position further than the step
before and to stop where the word ends, and it learns that only from training answers of as
many pieces. Here each decoder step is told where the answer written so far stands in the source:

- ``run`` (B, S): the length of the longest source span ending at ``s`` that equals the end of
  the answer so far (``run[s] = [src[s] == y] * (1 + run_before[s - 1])`` after writing ``y``);
  carried from step to step in the decoder state.
- the attention score of the position after such a span gets a learned bias, and one more if
  the span is the longest there is, so the step after ``▁Gin`` ``or`` looks at ``tel``;
- the step's input gets a learned embedding of what follows the longest such span: nothing
  matched, a piece that continues the word (``tel``), or one that does not (``▁is``, ``.``, the
  end of the source), so the decision to stop sees where the copied word ends.

Both are functions of token ids, the same for any name of any length, so what is learned on
two-piece names holds for five. Which pieces continue a word (no leading ``▁``, a letter or
digit first) comes from the tokenizer (:meth:`SpanFollowing.set_pieces`) and lives in a buffer.
Parameters, under the decoder's scope: ``decoder.span.follow`` (2,), the two score biases,
which start at 3 each (the piece after the longest span then weighs e^6, about 400 times, as
much as a position of equal score: following is where training starts from, not something it
must discover); ``decoder.span.embedding.weight`` (3, E).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

NOTHING, CONTINUES, ENDS = 0, 1, 2  # what follows the longest span matched


class Following(NamedTuple):
    """What span following adds to the decoder's attention and inputs, and where each span stands."""
    bias: Tensor  # (B, T, S) added to the attention scores
    inputs: Tensor  # (B, T, E) added to the decoder's step inputs
    run: Tensor  # (B, S) int64: the spans after the last step


class SpanFollowing(nn.Module):
    """The attention biases and step inputs that make copying continue a span.

    Args:
        vocab_size: the tokenizer's number of pieces.
        embedding_size: the decoder's step input size (the embeddings are added to it).
    """

    def __init__(self, vocab_size: int, embedding_size: int):
        super().__init__()
        self.follow = nn.Parameter(torch.full((2,), 3.0))  # after a span, after a longest one
        self.embedding = nn.Embedding(3, embedding_size)
        self.register_buffer("continues", torch.zeros(vocab_size, dtype=torch.bool))

    def set_pieces(self, pieces: Sequence[str]) -> None:
        """Mark the pieces that continue a word: no leading ``▁``, a letter or digit first."""
        self.continues.copy_(torch.tensor([not p.startswith("▁") and p[:1].isalnum()
                                           for p in pieces]))

    def forward(self, tokens: Tensor, ids: Tensor, mask: Tensor, run: Tensor) -> Following:
        """tokens (B, T) the step inputs (the answer so far, after ``<bos>``), ids and mask
        (B / g, S) the source and its real positions (a row serves g consecutive rows, as
        in beam search), run (B, S) the spans before the first step."""
        groups = tokens.size(0) // ids.size(0)
        ids, mask = ids.repeat_interleave(groups, 0), mask.repeat_interleave(groups, 0)  # (B, S)
        runs = []
        for step in tokens.unbind(1):  # (B,): answers are short
            run = ((ids == step[:, None]) & mask) * (1 + shift(run))
            runs.append(run)
        spans = torch.stack(runs, 1)  # (B, T, S)
        longest = spans.amax(-1, keepdim=True)  # (B, T, 1)
        # Step-count free, so what two-piece answers teach holds for longer ones.
        after = shift(spans > 0), shift((spans == longest) & (longest > 0))
        bias = after[0] * self.follow[0] + after[1] * self.follow[1]
        following = shift(self.continues[ids] & mask, back=True)  # (B, S): the next piece's
        continues = ((spans == longest) & following[:, None]).any(-1)
        kind = torch.where(longest[..., 0] == 0, NOTHING, torch.where(continues, CONTINUES, ENDS))
        return Following(bias, self.embedding(kind), run)


def shift(x: Tensor, back: bool = False) -> Tensor:
    """``x`` (..., S) moved one position along its last axis: ``out[s] = x[s - 1]`` (or
    ``x[s + 1]`` with ``back``), zero (False) where nothing is moved in."""
    edge = torch.zeros_like(x[..., :1])
    return torch.cat([x[..., 1:], edge], -1) if back else torch.cat([edge, x[..., :-1]], -1)
