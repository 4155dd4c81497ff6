"""What an answerer does around the model: read a question into token ids as training did,
choose the search once, and return ``Answer``s. Shared by ``Answerer`` (torch) and the ONNX
runtime; imports no torch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, NamedTuple

from qa_seq2seq.data.fields import SourceBuilder, unicode_problem
from qa_seq2seq.data.tokenizer import UNK_ID, Tokenizer
from qa_seq2seq.decoding.hypotheses import Hypothesis, with_texts
from qa_seq2seq.decoding.search_options import choose_search
from qa_seq2seq.errors import ConfigError, UserError


class QuestionError(UserError, ValueError):
    """A question the model cannot read (empty, missing a field, too long)."""


class Answer(NamedTuple):
    """One question's answer: the best text, its score, and the n-best list."""
    text: str  # the best answer
    score: float  # its total log-probability (<eos> included when finished)
    n_best: list[Hypothesis]  # best first: n_best[0] is this answer; more with n_best > 1


class QuestionReader:
    """Builds a question into the source the model reads and its token ids, as in training.

    A question is a string, or a dict with the fields the model was trained on (``question``,
    or those of its ``source_template``).
    """

    def __init__(self, data_config: dict[str, Any], tokenizer: Tokenizer):
        self.builder, self.tokenizer = SourceBuilder.from_data_config(data_config), tokenizer
        # The longest answer the model was trained to write, in search steps (<eos> included).
        self.answer_limit = int(data_config.get("max_answer_length", 64)) + 1

    def source(self, question: str | dict[str, Any]) -> tuple[str, list[int]]:
        """The source text (the filled template) and its token ids, built and cut as in training."""
        values = self._values(question)
        ids, length = self.builder.encode(self.tokenizer, values)
        if length > self.builder.max_length and self.builder.truncate_field is None:
            raise QuestionError(f"question has {length} tokens; this model takes at most "
                                f"{self.builder.max_length}")
        return self.builder.text(values), ids

    def _values(self, question: str | dict[str, Any]) -> dict[str, str]:
        fields = self.builder.fields
        if isinstance(question, str):
            if not question.strip():
                raise QuestionError("empty question")
            if problem := unicode_problem(question, "the question"):
                raise QuestionError(problem)
            if len(fields) > 1:
                raise QuestionError(f"this model reads the fields {fields}: give a dict (a JSON "
                                    "object at the command line) with them")
            return {fields[0]: question}
        if not isinstance(question, dict):
            raise QuestionError(f"a {type(question).__name__}, not a string or a dict")
        if len(fields) == 1 and fields[0] not in question and "question" in question:
            question = {fields[0]: question["question"]}  # the generic {"question": ...} form
        values = self.builder.values(question)
        if isinstance(values, str):
            expected = ", ".join(fields) + (" (or question)" if fields != ["question"] and
                                            len(fields) == 1 else "")
            raise QuestionError(f"{values}; this model reads the field(s) {expected}")
        return values


def by_length(ids: Sequence[Sequence[int]], batch_size: int,
              run: Callable[[list[Sequence[int]]], list[Any]]) -> list[Any]:
    """``run`` over length-sorted batches of ``batch_size`` tokenised questions (each
    non-empty), so each batch pads little; one result per question, in input order."""
    if any(len(q) == 0 for q in ids):
        raise ValueError("every question needs at least one token")
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    results: list[Any] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        for i, result in zip(rows, run([ids[i] for i in rows])):
            results[i] = result
    return results


class AnswererBase:
    """What every answerer offers on top of its model: questions in, ``Answer`` out, the
    search chosen and checked in one place, and length-sorted batches through it.

    Subclasses implement ``pad`` in the model's array type (torch, numpy).
    """

    searches: dict[str, Callable]  # name -> search function, for the model's array type

    def __init__(self, model: Any, tokenizer: Tokenizer, path: Any, data: dict[str, Any] | None,
                 stored_decode: dict[str, Any] | None, decode: str | None, batch_size: int,
                 options: dict[str, Any]):
        """``data`` and ``stored_decode``: the data and decode configs the model was trained and
        validated with (the question is read as that data config reads it; ``decode=None``
        takes that search)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.path = model, tokenizer, path
        self.stored_decode = stored_decode
        self.reader = QuestionReader(data or {}, tokenizer)
        self.batch_size = batch_size
        self.set_search(decode, options)

    def pad(self, ids: list[Sequence[int]]) -> tuple[Any, Any]:
        """Right-padded source ids (B, S) and lengths (B,) in the model's array type."""
        raise NotImplementedError

    def set_search(self, decode: str | None, options: dict[str, Any]) -> None:
        """Choose the search (None: the stored one) and its options; bad names, types and values
        (``beam_size=0``) fail here, before any input is read."""
        self.decode, self.options = choose_search(self.stored_decode, decode, options,
                                                  self.searches)
        self.search = partial(self.searches[self.decode], **self.options)
        self.search(self.model, *self.probe())

    def with_search(self, decode: str | None = None, **options: Any) -> AnswererBase:
        """This answerer, sharing its loaded model, with another search or options."""
        other = copy.copy(self)
        other.set_search(decode, options)
        return other

    def probe(self) -> tuple[Any, Any]:
        """A one-token question (src, lengths), to run a search once on."""
        return self.pad([[UNK_ID]])

    def answer(self, questions: Iterable[str | dict[str, Any]]) -> list[Answer]:
        """One Answer per question, in order. A question the model cannot read raises
        ``QuestionError`` naming its position; nothing is decoded then."""
        if isinstance(questions, str | bytes | dict):
            raise QuestionError(f"answer() takes a list of questions, not one {type(questions).__name__}"
                                ": pass [question]")
        ids = []
        for i, question in enumerate(questions):
            try:
                ids.append(self.source(question)[1])
            except QuestionError as e:
                raise QuestionError(f"question {i}: {e}") from None
        return [Answer(h[0].text, h[0].score, h) for h in self.answer_ids(ids)]

    def answer_ids(self, ids: Sequence[Sequence[int]]) -> list[list[Hypothesis]]:
        """The n-best list of each tokenised source (as ``source`` gives it), in order, each
        hypothesis with its ``text``."""
        reverse = self.reader.builder.reverse_target
        return by_length(ids, self.batch_size, lambda rows: [
            with_texts(hypotheses, self.tokenizer, reverse)
            for hypotheses in self.search(self.model, *self.pad(rows))])

    def source(self, question: str | dict[str, Any]) -> tuple[str, list[int]]:
        """The source text the model reads for ``question`` (the filled template) and its token
        ids, built and cut as in training."""
        return self.reader.source(question)
