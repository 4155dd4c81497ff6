"""Global attention over the encoder outputs (``model/net/attention=dot|general|bahdanau``).

Luong et al. (2015): after each decoder step, the RNN output ``h_t`` scores every source
position, a softmax over the real (unpadded) positions weighs the encoder outputs into a context
``c_t``, and the attentional vector ``h~_t = tanh(W_c [c_t; h_t])`` replaces ``h_t`` before the
output layer. Scores:

- ``dot``: ``h_t · m_s`` (encoder and decoder sizes must match);
- ``general``: ``h_t · W_a m_s``;
- ``bahdanau``: ``v · tanh(W_q h_t + W_k m_s)``, the additive score of Bahdanau et al. (2015),
  used after the RNN step as OpenNMT-py's ``mlp`` attention does.

Everything that depends on the source alone (``W_a m_s``, ``W_k m_s``, the padding mask) is
computed once per question in :meth:`Attention.memory`, and beam search keeps it once per
question (its k hypotheses read the same row), so a decoding step costs one batched matmul over
the source and no copy of it. Parameters live under the decoder's scope:
``decoder.attention.key.weight``, ``.query.weight`` / ``.bias``, ``.v.weight``, ``.out.weight``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError

SCORES = ("dot", "general", "bahdanau")


class Memory(NamedTuple):
    """The encoder outputs, prepared once per question."""

    values: Tensor  # (B, S, M) encoder outputs, zeros at padding
    keys: Tensor  # (B, S, K): what queries are scored against
    mask: Tensor  # (B, S) True at real source tokens
    ids: Tensor | None = None  # (B, S) the source token ids: only for copy attention

    def index_select(self, dim: int, order: Tensor) -> Memory:
        """Rows ``order`` of the batch (``dim`` 0), as ``Tensor.index_select`` does. Dot
        attention's keys are its values: copied once, and still one tensor after."""
        values = self.values.index_select(dim, order)
        keys = values if self.keys is self.values else self.keys.index_select(dim, order)
        ids = None if self.ids is None else self.ids.index_select(dim, order)
        return Memory(values, keys, self.mask.index_select(dim, order), ids)


class Attended(NamedTuple):
    """What attention gives the decoder: the attentional vectors and the weights over the source."""
    hidden: Tensor  # (B, T, Q) attentional vectors h~_t
    weights: Tensor  # (B, T, S) attention over the source, 0 at padding


class Attention(nn.Module):
    """Luong or Bahdanau attention of the decoder's outputs over the encoder's, masked at padding.

    Args:
        score: ``dot`` | ``general`` | ``bahdanau``.
        query_size: the decoder RNN's output size (also the size of ``h~_t``).
        memory_size: the encoder's output size (both directions together).
    """

    def __init__(self, score: str, query_size: int, memory_size: int):
        super().__init__()
        if score not in SCORES:
            raise ConfigError(f"model/net/attention score={score!r}: use one of {SCORES}")
        if score == "dot" and query_size != memory_size:
            raise ConfigError(
                f"model/net/attention=dot scores decoder outputs ({query_size}) against encoder "
                f"outputs ({memory_size}) directly, so their sizes must match (a bidirectional "
                f"encoder doubles its size). Use model/net/attention=general or bahdanau.")
        self.score = score
        if score != "dot":
            self.key = nn.Linear(memory_size, query_size, bias=False)
        if score == "bahdanau":
            self.query = nn.Linear(query_size, query_size)
            self.v = nn.Linear(query_size, 1, bias=False)
        self.out = nn.Linear(memory_size + query_size, query_size, bias=False)

    def extra_repr(self) -> str:
        return f"score={self.score!r}"

    def memory(self, values: Tensor, lengths: Tensor, ids: Tensor | None = None) -> Memory:
        """values (B, S, M) encoder outputs, lengths (B,) -> the prepared memory; ``ids``
        (B, S), the source tokens, are kept for copy attention."""
        keys = values if self.score == "dot" else self.key(values)
        return Memory(values, keys, real_tokens(values, lengths), ids)

    def forward(self, query: Tensor, memory: Memory, bias: Tensor | None = None) -> Attended:
        """query (B, T, Q): decoder RNN outputs -> attentional vectors and weights."""
        context, weights = self.read(query, memory, bias)
        return Attended(self.combine(context, query), weights)

    def read(self, query: Tensor, memory: Memory, bias: Tensor | None = None
             ) -> tuple[Tensor, Tensor]:
        """query (B, T, Q) -> the context (B, T, M) and the weights (B, T, S); ``bias``
        (B, T, S) is added to the scores (``qa_seq2seq.network.spans``).

        A memory of fewer rows (B / g, as beam search keeps it) serves g consecutive query rows
        each: the k hypotheses of a question read one copy of its encoder outputs.
        """
        rows, steps = query.shape[:2]
        # (B / g, g * T, Q): a view, so g = 1 costs nothing and an exported step graph serves
        # any g (the ONNX runtime's beam search keeps one memory row per question too).
        query = query.reshape(memory.mask.size(0), -1, query.size(-1))
        if self.score == "bahdanau":
            features = torch.tanh(self.query(query)[:, :, None] + memory.keys[:, None])  # (B,T,S,Q)
            scores = self.v(features).squeeze(-1)  # (B, T, S)
        else:
            scores = query @ memory.keys.transpose(1, 2)  # (B, T, S)
        if bias is not None:
            scores = scores + bias.reshape(scores.shape)
        scores = scores.masked_fill(~memory.mask[:, None], float("-inf"))
        weights = scores.softmax(-1)  # every question has >= 1 real token: no all -inf row
        context = weights @ memory.values  # (B, T, M)
        return context.reshape(rows, steps, -1), weights.reshape(rows, steps, -1)

    def combine(self, context: Tensor, query: Tensor) -> Tensor:
        """The attentional vector h~_t = tanh(W [c_t; q_t]): (B, T, M), (B, T, Q) -> (B, T, Q)."""
        return torch.tanh(self.out(torch.cat([context, query], -1)))


class Pooling(nn.Module):
    """Self-attentive pooling (Lin et al. 2017, one head): one summary of the encoder outputs
    per question, ``sum_s a_s m_s`` with ``a = softmax_s(v · tanh(W m_s))`` over the real
    tokens. Its weights depend on the tokens alone, not on a decoder state, so it can learn to
    pick the words that set what the whole answer is (which operation was asked).

    Parameters (under the decoder's scope): ``decoder.pooling.key.weight`` (P, M),
    ``decoder.pooling.v.weight`` (1, P), P = M.
    """

    def __init__(self, memory_size: int):
        super().__init__()
        self.key = nn.Linear(memory_size, memory_size, bias=False)
        self.v = nn.Linear(memory_size, 1, bias=False)

    def forward(self, values: Tensor, lengths: Tensor) -> Tensor:
        """values (B, S, M) encoder outputs, lengths (B,) -> the summary (B, M)."""
        scores = self.v(torch.tanh(self.key(values))).squeeze(-1)  # (B, S)
        weights = scores.masked_fill(~real_tokens(values, lengths), float("-inf")).softmax(-1)
        return (weights[:, :, None] * values).sum(1)


class SelfAttention(nn.TransformerEncoder):
    """Transformer layers over the encoder's outputs (``model.net.self_attention_layers``): each
    source position reads every other, so facts told in different sentences meet before the
    decoder reads them (the person a question names gathers what each sentence says of them).
    torch's ``nn.TransformerEncoderLayer`` (pre-norm, feed-forward of twice the width, GELU)
    over the real positions; the RNN's outputs already carry the order, so no position encoding.

    Parameters (under the encoder's scope): ``encoder.self_attention.layers.<i>.self_attn.*``,
    ``.linear1/2.*``, ``.norm1/2.*``, torch's names.
    """

    def __init__(self, size: int, layers: int, heads: int, dropout: float = 0.0):
        if heads < 1 or size % heads:
            raise ConfigError(f"model.net.self_attention_heads={heads} must divide the encoder's "
                              f"output size ({size}), e.g. 1, 2 or 4 when it is a multiple of 4")
        layer = nn.TransformerEncoderLayer(size, heads, 2 * size, dropout, "gelu", batch_first=True,
                                           norm_first=True)
        super().__init__(layer, layers, enable_nested_tensor=False)

    def forward(self, values: Tensor, lengths: Tensor) -> Tensor:  # type: ignore[override]
        """values (B, S, M) encoder outputs, lengths (B,) -> (B, S, M), zeros at padding."""
        real = real_tokens(values, lengths)
        return super().forward(values, src_key_padding_mask=~real) * real[..., None]


def real_tokens(values: Tensor, lengths: Tensor) -> Tensor:
    """values (B, S, ...) right-padded, lengths (B,) -> (B, S) True at the real tokens."""
    return torch.arange(values.size(1), device=values.device) < lengths.to(values.device)[:, None]
