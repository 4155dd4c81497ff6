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
from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.decoding.hypotheses import Hypothesis
from qa_seq2seq.decoding.search_choice import choose_search
from qa_seq2seq.errors import UserError


class QuestionError(UserError, ValueError):
    """A question the model cannot read (empty, missing a field, too long)."""


class Answer(NamedTuple):
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


class Answering:
    """What every answerer offers on top of its model: questions in, ``Answer`` out, and the
    search chosen and checked in one place.

    Subclasses set ``reader`` (a QuestionReader), ``searches`` (name -> search function),
    ``stored_decode`` (the decode config the model was validated with) and ``model``, and
    implement ``answer_ids`` and ``probe``.
    """

    reader: QuestionReader
    searches: dict[str, Callable]
    stored_decode: dict[str, Any] | None
    model: Any

    def set_search(self, decode: str | None, options: dict[str, Any]) -> None:
        """Choose the search (None: the stored one) and its options; bad names, types and values
        (``beam_size=0``) fail here, before any input is read."""
        self.decode, self.options = choose_search(self.stored_decode, decode, options,
                                                  self.searches)
        self.search = partial(self.searches[self.decode], **self.options)
        self.search(self.model, *self.probe())

    def with_search(self, decode: str | None = None, **options: Any) -> Answering:
        """This answerer, sharing its loaded model, with another search or options."""
        other = copy.copy(self)
        other.set_search(decode, options)
        return other

    def probe(self) -> tuple[Any, Any]:
        """A one-token question (src, lengths) in the model's array type."""
        raise NotImplementedError

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
        """The n-best list of each tokenised source (as ``source`` gives it), in order."""
        raise NotImplementedError

    def source(self, question: str | dict[str, Any]) -> tuple[str, list[int]]:
        """The source text the model reads for ``question`` (the filled template) and its token
        ids, built and cut as in training."""
        return self.reader.source(question)
