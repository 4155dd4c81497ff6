"""Subword regularization while training (``data.subword_sampling``): each training batch
segments its words one sampled way instead of the tokenizer's best way.

A tokenizer trained where the same names recur makes each of them one piece; a name it never saw
comes out in several. Sampled segmentations (BPE-dropout for ``bpe`` tokenizers, Provilkov et
al. 2020; sampling from the unigram lattice for ``unigram``, Kudo 2018, both sentencepiece's own)
show the model every name split many ways, so copying a name piece after piece is something
training asks for.

Copying needs a name to be the same pieces in the answer as in the passage: a segmentation is
sampled once per distinct word of a row and used wherever the word occurs, in source and target.
A word here is a whitespace-separated chunk; its leading letters are sampled and the rest of it
(``'s``, ``.``) keeps the tokenizer's pieces, so ``Ginortel.`` and ``Ginortel`` share theirs.
Validation, evaluation and decoding always read the tokenizer's best segmentation.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import sentencepiece as spm

from qa_seq2seq.data.batching import Batch, collate
from qa_seq2seq.data.fields import SourceBuilder
from qa_seq2seq.data.tokenizer import Tokenizer

LETTERS = re.compile(r"[^\W\d_]+")


class SampledCollate:
    """A training batch's collate: its rows' texts encoded with sampled segmentations, then
    padded as ``collate`` does. A row whose sampled source would pass the length limit keeps its
    stored (best, cut) ids. The draws are seeded by the batch's rows, so a resumed run samples
    what an uninterrupted one did.

    Args:
        tokenizer: the run's tokenizer.
        builder: orients the ids as training reads them (``data.reverse_source``...).
        alpha: BPE-dropout's probability of skipping a merge, or the unigram sampling's
            smoothing (``data.subword_sampling``).
        max_answer_length: the answer limit (``data.max_answer_length``).
        seed: the run's data seed.
    """

    def __init__(self, tokenizer: Tokenizer, builder: SourceBuilder, alpha: float,
                 max_answer_length: int, seed: int = 0):
        self.tokenizer, self.builder, self.alpha = tokenizer, builder, alpha
        self.max_answer_length, self.seed = max_answer_length, seed
        self._split: dict[str, tuple[str, list[int]]] = {}  # word -> (letters, the rest's ids)

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        spm.set_random_generator_seed(zlib.crc32(repr((self.seed, [r["index"] for r in rows]))
                                                 .encode()) or 1)
        resampled = []
        for row in rows:
            src, tgt = self.encode([row["source"], row["target"]])
            fits = len(src) <= self.builder.max_length and len(tgt) <= self.max_answer_length
            resampled.append({**row, "src_ids": self.builder.orient(src) if fits else row["src_ids"],
                              "tgt_ids": self.builder.orient_target(tgt) if fits else row["tgt_ids"]})
        return collate(resampled)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of ``texts`` (one row's source and target) with each distinct word's leading
        letters segmented one sampled way wherever the word occurs."""
        words = [text.split() for text in texts]
        parts = {word: self._parts(word) for word in set().union(*words)}
        letters = sorted({head for head, _ in parts.values() if head})
        sampled = dict(zip(letters, self.tokenizer.encode_sampled(letters, self.alpha)))
        return [[i for word in text_words
                 for i in sampled.get(parts[word][0], []) + parts[word][1]]
                for text_words in words]

    def _parts(self, word: str) -> tuple[str, list[int]]:
        """``word``'s leading letters (sampled) and the ids of the rest (kept); no letters when
        the word has none, or the tokenizer does not cut it after them."""
        if word not in self._split:
            found = LETTERS.match(word)
            whole = self.tokenizer.encode([word])[0]
            self._split[word] = "", whole
            if found:
                head = self.tokenizer.encode([found.group()])[0]
                if whole[:len(head)] == head:
                    self._split[word] = found.group(), whole[len(head):]
        return self._split[word]
