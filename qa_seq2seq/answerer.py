"""Answer questions from Python with a trained model (the decoding CLI is a thin user of this).

    from qa_seq2seq import Answerer

    qa = Answerer.from_checkpoint("outputs/toy_lstm/<run>", decode="beam", beam_size=5, n_best=3)
    for a in qa.answer(["Which is larger, 31 or 13?", {"question": "What is 3 plus 4?"}]):
        print(a.text, a.score, [h.text for h in a.n_best])

A question is a string, or a dict with the fields the model was trained on (``question``, or
those of its ``source_template``); it is built into a source, tokenised and cut exactly as in
training. ``decode`` names a search (``greedy``, ``beam``, ``sample``: the ``decode=`` choices
of training and ``evaluate``; default: the one the checkpoint was validated with); keyword
options are that search's arguments (``beam_size``, ``max_length``, ``length_penalty``,
``temperature``, ...) and are checked by name.

Imports only torch, sentencepiece and the weights (no Lightning, datasets or Hydra).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import torch

from qa_seq2seq.checkpoint import LoadedModel, load_model
from qa_seq2seq.errors import ConfigError, UserError
from qa_seq2seq.fields import SourceBuilder
from qa_seq2seq.inference import answer
from qa_seq2seq.search import Hypothesis, beam_search, greedy_search, sample
from qa_seq2seq.tokenizer import UNK_ID

SEARCHES = {"greedy": greedy_search, "beam": beam_search, "sample": sample}


def search_options(decode: str) -> dict[str, Any]:
    """The options of search ``decode`` and their defaults (its arguments after model, src and
    lengths): ``search_options("greedy") == {"max_length": 64, ...}``."""
    parameters = list(inspect.signature(SEARCHES[decode]).parameters.values())[3:]
    return {p.name: p.default for p in parameters}


def check_type(key: str, value: Any, default: Any) -> None:
    """``value`` must be of its default's kind (an int also for a float); a None default (an
    optional int or float: ``max_length_ratio``, ``seed``) takes a number or None."""
    if default is None:
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        kind = "a number or null"
    elif isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        kind = "a number"
    else:
        ok, kind = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise ConfigError(f"{key}={value!r}: must be {kind} (default {default!r})")


def decode_choice(config: dict[str, Any] | None, where: str) -> tuple[str, dict[str, Any]]:
    """The search a ``decode`` config (``conf/decode/*.yaml``, resolved) names, and its options;
    None: greedy with its defaults. The ``_target_`` is only looked up among the known
    searches, never imported (``where`` names the config's origin for the error)."""
    options = dict(config or {"_target_": "qa_seq2seq.search.greedy_search"})
    target = options.pop("_target_", "")
    options.pop("_partial_", None)
    for name, search in SEARCHES.items():
        if target == f"{search.__module__}.{search.__name__}":
            return name, options
    raise ConfigError(f"{where} names {target!r}, not one of {', '.join(SEARCHES)}: pass "
                      "decode=...")


class QuestionError(UserError, ValueError):
    """A question the model cannot read (empty, missing a field, too long)."""


class Answer(NamedTuple):
    text: str  # the best answer
    score: float  # its total log-probability (<eos> included when finished)
    n_best: list[Hypothesis]  # best first: n_best[0] is this answer; more with n_best > 1


class Answerer:
    """A loaded model, its tokenizer and source builder, and one search with its options.

    ``decode=None`` uses the search the checkpoint was validated with (``decode=`` at training,
    stored in the checkpoint; greedy for older ones), with its options; ``options`` override
    them. Naming another search starts from that search's defaults.
    """

    def __init__(self, loaded: LoadedModel, decode: str | None = None, *, batch_size: int = 64,
                 device: str | torch.device = "cpu", **options: Any):
        stored_name, stored_options = decode_choice(loaded.checkpoint.payload.get("decode"),
                                                    "the checkpoint's decode config")
        if decode is None or decode == stored_name:
            decode, options = stored_name, {**stored_options, **options}
        if decode not in SEARCHES:
            raise ConfigError(f"decode={decode!r}: choose from {', '.join(SEARCHES)}")
        accepted = search_options(decode)
        if unknown := sorted(set(options) - set(accepted)):
            raise ConfigError(f"{', '.join(unknown)}: not an option of decode={decode}; its "
                              f"options are {', '.join(accepted)}")
        for key, value in options.items():
            check_type(key, value, accepted[key])
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.checkpoint = loaded
        self.builder = SourceBuilder.from_data_config(loaded.checkpoint.payload.get("data", {}))
        self.decode, self.options = decode, options
        self.search = partial(SEARCHES[decode], **options)
        self.batch_size, self.device = batch_size, device
        # Bad option values (beam_size=0, top_p=2) fail now, not after the input was read.
        self.search(self.model, torch.tensor([[UNK_ID]], device=device), torch.tensor([1]))

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, decode: str | None = None, *,
                        batch_size: int = 64, device: str | torch.device = "cpu",
                        **options: Any) -> Answerer:
        """Load a checkpoint file or run directory (None: the newest run under ``outputs/``)."""
        return cls(load_model(path, device), decode, batch_size=batch_size, device=device,
                   **options)

    def answer(self, questions: Iterable[str | dict[str, Any]]) -> list[Answer]:
        """One Answer per question, in order. A question the model cannot read raises
        ``QuestionError`` naming its position; nothing is decoded then."""
        ids = []
        for i, question in enumerate(questions):
            try:
                ids.append(self.source(question)[1])
            except QuestionError as e:
                raise QuestionError(f"question {i}: {e}") from None
        return [Answer(h[0].text, h[0].score, h) for h in self.answer_ids(ids)]

    def answer_ids(self, ids: Sequence[Sequence[int]]) -> list[list[Hypothesis]]:
        """The n-best list of each tokenised source (as ``source`` gives it), in order."""
        return answer(self.model, ids, self.search, self.batch_size, self.device, self.tokenizer,
                      self.builder.reverse_target)

    def source(self, question: str | dict[str, Any]) -> tuple[str, list[int]]:
        """The source text the model reads for ``question`` (the filled template) and its token
        ids, built and cut as in training."""
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
            expected = ", ".join(fields) + (" (or question)" if len(fields) == 1 else "")
            raise QuestionError(f"{values}; this model reads the field(s) {expected}")
        return values
