"""Which source pieces also occur on the other side of a separator (``model.net.match_separator``).

A source such as ``Where does Norzu live? <sep> Kelbi moved to Sarme. Norzu moved to Zanvar.``
is split by the separator piece into sides (question, passage). Each piece that also occurs on
another side gets a learned "match" embedding added to its token embedding: here ``Norzu`` in
the passage, and in the question. This is DrQA's exact-match feature (Chen et al. 2017): the
encoder no longer has to carry a name it has never seen across the passage to find where the
question's person is spoken of; it reads which sentences are about them from its input.

With ``words`` (``model.net.match_words``) a passage piece found in the question says which
question word it matches, the first ``words`` words told apart: in ``What is Norzu to Kelbi?``
the passage's ``Norzu`` and ``Kelbi`` get different embeddings (word 2 and word 4), so the
encoder knows which of two people asked about a sentence speaks of. Words are counted by the
pieces that start one (``▁``), whatever the names' pieces. With ``pool_size``
(``model.net.match_pooling``) every piece of a question word and of its passage matches also
gets, after the encoder RNN, a learned map of the mean of the RNN's outputs over all of them
(:meth:`SourceMatch.mentions`): what one sentence says of a person (an age, a gender, a
parent) reaches every other sentence that names them, in one step and for any distance.

The separator must be one piece: a sentencepiece user-defined symbol
(``data.tokenizer.user_defined_symbols``) written in ``data.source_template``. Its id and the
word starts come from the tokenizer (:meth:`set_pieces`, called once by training) and are kept
in buffers, so a checkpoint carries them. The plain feature is symmetric in the sides, so a
reversed source (``data.reverse_source``) needs nothing more; question words are counted from
the question's start, which a reversed source moves to its end: ``words`` refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError


class SourceMatch(nn.Module):
    """The match embeddings of a source's pieces, and the pooling over a question word's mentions.

    Args:
        vocab_size: the tokenizer's number of pieces.
        embedding_size: the token embeddings' size (match embeddings are added to them).
        separator: the piece that splits the source into sides, e.g. ``<sep>``.
        words: question words a passage match tells apart (0: only that it matches).
        pool_size: the encoder's output size, to pool it over each question word's mentions
            (needs ``words``); None: no pooling.
    """

    def __init__(self, vocab_size: int, embedding_size: int, separator: str, words: int = 0,
                 pool_size: int | None = None):
        super().__init__()
        if words < 0:
            raise ConfigError(f"model.net.match_words must be >= 0, got {words}")
        if pool_size and not words:
            raise ConfigError("model.net.match_pooling=true pools over each question word's "
                              "mentions: set model.net.match_words (e.g. 8) too")
        self.pool = nn.Linear(pool_size, pool_size) if pool_size else None
        self.vocab_size, self.separator, self.words = vocab_size, separator, words
        # 0: no match, 1: a match, 2 + k: a passage piece matching question word k
        self.embedding = nn.Embedding(2 + words, embedding_size)
        self.register_buffer("separator_id", torch.tensor(-1))  # -1 matches no id: one side
        # Only with words, so that checkpoints made without them still load.
        self.register_buffer("word_starts", torch.zeros(vocab_size, dtype=torch.bool)
                             if words else None)

    def extra_repr(self) -> str:
        return f"separator={self.separator!r}, words={self.words}"

    def set_pieces(self, pieces: Sequence[str], reversed_source: bool = False) -> None:
        """Find the separator among the tokenizer's pieces, and the pieces that start a word;
        refuse a tokenizer without the separator."""
        if self.separator not in pieces:
            raise ConfigError(
                f"model.net.match_separator={self.separator!r} is not a piece of the tokenizer: "
                f"add it to data.tokenizer.user_defined_symbols (e.g. "
                f"'data.tokenizer.user_defined_symbols=[{self.separator}]') and write it in "
                f"data.source_template between the question and the passage")
        if self.words and reversed_source:
            raise ConfigError("model.net.match_words counts question words from the question's "
                              "start, and data.reverse_source=true puts it at the source's end: "
                              "set model.net.match_words=0 or data.reverse_source=false")
        self.separator_id.fill_(list(pieces).index(self.separator))
        if self.word_starts is not None:
            self.word_starts.copy_(torch.tensor([p.startswith("▁") for p in pieces]))

    def forward(self, src: Tensor, lengths: Tensor) -> Tensor:
        """src (B, S) ids, lengths (B,) -> match embeddings (B, S, E)."""
        kind = matches(src, lengths, self.separator_id, self.vocab_size).long()
        if self.words:
            word, passage = question_words(src, lengths, self.separator_id, self.word_starts)
            kind = torch.where((word >= 0) & passage, 2 + word.clamp(max=self.words - 1), kind)
        return self.embedding(kind)

    def mentions(self, output: Tensor, src: Tensor, lengths: Tensor) -> Tensor:
        """output (B, S, D) the encoder RNN's, src (B, S), lengths (B,) -> (B, S, D) to add:
        at each piece of a question word or matching one, the learned map of the mean output
        over all of that word's pieces; zeros elsewhere."""
        word, _ = question_words(src, lengths, self.separator_id, self.word_starts)
        group = torch.where(word >= 0, word, src.size(1))  # (B, S); S: in no group
        sums = output.new_zeros(output.size(0), src.size(1) + 1, output.size(2)).scatter_add(
            1, group[..., None].expand_as(output), output)
        counts = output.new_zeros(output.size(0), src.size(1) + 1).scatter_add(
            1, group, torch.ones_like(output[..., 0]))
        means = sums / counts.clamp(min=1)[..., None]  # (B, S + 1, D)
        return self.pool(means.gather(1, group[..., None].expand_as(output))) * \
            (word >= 0)[..., None]


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


def question_words(src: Tensor, lengths: Tensor, separator: Tensor, word_starts: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """src (B, S) ids, lengths (B,), the separator's id, word_starts (V,) -> the question word
    each piece is or matches (B, S): a question piece's own (words counted by the pieces that
    start one), a passage piece's first occurrence's in the question, -1 for the rest; and
    which pieces are on the passage side, after the first separator (B, S)."""
    position = torch.arange(src.size(1), device=src.device)
    real = (position < lengths.to(src.device)[:, None]) & (src != separator)
    side = torch.cumsum((src == separator).long(), 1)
    question, passage = real & (side == 0), real & (side > 0)
    word = torch.cumsum((word_starts[src] & question).long(), 1) - 1  # (B, S) along the question
    word = word.clamp(min=0)
    unseen = src.size(1)  # larger than any word index
    # One flat (row, id) axis: a 2-D scatter_reduce exports to ONNX with a 1-D shape, which
    # onnxruntime then warns about at every call.
    key = src + torch.arange(src.size(0), device=src.device)[:, None] * word_starts.numel()
    first = torch.full((src.size(0) * word_starts.numel(),), unseen, dtype=torch.long,
                       device=src.device)
    first = first.scatter_reduce(0, key.flatten(), torch.where(question, word, unseen).flatten(),
                                 "amin")
    found = first[key]  # (B, S)
    matched = torch.where(passage & (found < unseen), found, -1)
    return torch.where(question, word, matched), passage
