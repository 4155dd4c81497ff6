"""Copy attention: the pointer-generator of See et al. (2017), OpenNMT-py's ``copy_attn``
(``model.net.copy=true``).

At each decoder step a learned switch ``p_gen = sigmoid(w · [h~_t; x_t] + b)`` mixes generating
from the vocabulary with copying a source token through the attention weights ``a_t``::

    P(w) = p_gen * softmax(W_out h~_t)[w] + (1 - p_gen) * sum over s with src_s = w of a_{t,s}

so an answer can take a name from the question's passage that the output layer never learned
to write. The decoder then returns ``log P`` where it returned logits: cross-entropy, label
smoothing and every search read it unchanged (``log_softmax`` of a log-distribution is itself).
Source and answer share one vocabulary, so every source piece can be copied (with
``data.tokenizer.byte_fallback=true`` no piece is ``<unk>``). Parameters, under the decoder's
scope: ``decoder.copy.switch.weight`` (1, H + E) and ``.bias``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

TINY = torch.finfo(torch.float32).tiny  # log(0) would be -inf: a token neither generated nor copied


class CopyGenerator(nn.Module):
    """Copy attention: mixes generating a token with copying one from the source.

    Args:
        hidden_size: the size of the attentional vectors ``h~_t`` (the output layer's input).
        input_size: the size of the decoder's step inputs ``x_t`` (the embedding size).
    """

    def __init__(self, hidden_size: int, input_size: int):
        super().__init__()
        self.switch = nn.Linear(hidden_size + input_size, 1)

    def forward(self, logits: Tensor, hidden: Tensor, inputs: Tensor, weights: Tensor,
                source_ids: Tensor) -> tuple[Tensor, Tensor]:
        """logits (B, T, V), hidden (B, T, H), inputs (B, T, E), weights (B, T, S) over the
        source, source_ids (B / g, S) -> log P (B, T, V) in float32, and the switch p_gen (B, T).

        As the attention memory does, a source row may serve g consecutive rows (beam search
        keeps one per question for its k hypotheses).
        """
        rows, steps, vocab = logits.shape
        generate = torch.sigmoid(self.switch(torch.cat([hidden, inputs], -1)).float())  # (B, T, 1)
        groups = source_ids.size(0)
        weights = weights.float().reshape(groups, -1, weights.size(-1))  # (B / g, g * T, S)
        copied = weights.new_zeros(groups, weights.size(1), vocab).scatter_add_(
            -1, source_ids[:, None].expand(-1, weights.size(1), -1), weights)
        mixture = generate * logits.float().softmax(-1) + \
            (1 - generate) * copied.reshape(rows, steps, vocab)
        return mixture.clamp_min(TINY).log(), generate[..., 0]
