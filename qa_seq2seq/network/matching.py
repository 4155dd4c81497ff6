"""Which source pieces also occur on the other side of a separator (``model.net.match_separator``).

A source such as ``Where does Norzu live? <sep> Kelbi moved to Sarme. Norzu moved to Zanvar.``
is split by the separator piece into sides (question, passage). Each piece that also occurs on
another side gets a learned "match" embedding added to its token embedding: here ``Norzu`` in
the passage, and in the question. This is DrQA's exact-match feature (Chen et al. 2017): the
encoder no longer has to carry a name it has never seen across the passage to find where the
question's person is spoken of; it reads which sentences are about them from its input.

The separator must be one piece: a sentencepiece user-defined symbol
(``data.tokenizer.user_defined_symbols``) written in ``data.source_template``. Its id comes from
the tokenizer (:meth:`set_pieces`, called once by training) and is kept in a buffer, so a
checkpoint carries it. The feature is symmetric in the sides, so a reversed source
(``data.reverse_source``) needs nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError


class SourceMatch(nn.Module):
    """Args:
        vocab_size: the tokenizer's number of pieces.
        embedding_size: the token embeddings' size (match embeddings are added to them).
        separator: the piece that splits the source into sides, e.g. ``<sep>``.
    """

    def __init__(self, vocab_size: int, embedding_size: int, separator: str):
        super().__init__()
        self.vocab_size, self.separator = vocab_size, separator
        self.embedding = nn.Embedding(2, embedding_size)  # 0: no match, 1: a match
        self.register_buffer("separator_id", torch.tensor(-1))  # -1 matches no id: one side

    def extra_repr(self) -> str:
        return f"separator={self.separator!r}"

    def set_pieces(self, pieces: Sequence[str]) -> None:
        """Find the separator among the tokenizer's pieces; refuse a tokenizer without it."""
        if self.separator not in pieces:
            raise ConfigError(
                f"model.net.match_separator={self.separator!r} is not a piece of the tokenizer: "
                f"add it to data.tokenizer.user_defined_symbols (e.g. "
                f"'data.tokenizer.user_defined_symbols=[{self.separator}]') and write it in "
                f"data.source_template between the question and the passage")
        self.separator_id.fill_(list(pieces).index(self.separator))

    def forward(self, src: Tensor, lengths: Tensor) -> Tensor:
        """src (B, S) ids, lengths (B,) -> match embeddings (B, S, E)."""
        return self.embedding(matches(src, lengths, self.separator_id, self.vocab_size).long())


def matches(src: Tensor, lengths: Tensor, separator: Tensor, vocab_size: int) -> Tensor:
    """src (B, S) ids below ``vocab_size``, lengths (B,), the separator's id -> (B, S) bool:
    the piece also occurs on another side of the separator. Separators and padding never match.

    An id occurs on more than one side exactly when the sides of its occurrences are not all
    equal, i.e. when their variance is not zero: ``n * sum(side^2) != sum(side)^2``, three
    integer sums per (row, id) (``scatter_add``), so the cost grows with S, not S^2."""
    position = torch.arange(src.size(1), device=src.device)
    real = (position < lengths.to(src.device)[:, None]) & (src != separator)  # (B, S)
    side = torch.cumsum((src == separator).long(), 1) * real  # (B, S): 0 before the first one
    sums = [torch.zeros(src.size(0), vocab_size, dtype=torch.long, device=src.device)
            .scatter_add(1, src, value) for value in (real.long(), side, side * side)]
    count, total, squares = (s.gather(1, src) for s in sums)  # (B, S), per position's id
    return (count * squares != total * total) & real
