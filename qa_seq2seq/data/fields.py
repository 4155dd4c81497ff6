"""From a data row to the model's source and target: templates, nested fields, truncation.

``source_template`` builds the question the model reads from a row's fields, e.g.
``"question: {question} context: {context}"``; without one the ``question_field`` is read as it
is. ``answer_field`` may be a path into nested fields: ``answers.text[0]`` is SQuAD's first
answer. When a templated source is too long, ``truncate_field`` (e.g. ``context``) is cut to
fit and the rest of the template (the question) is kept whole. ``reverse_source`` feeds the
source's tokens last to first (Sutskever et al. 2014): the first words of the question end up
nearest to the decoder, which shortens the path between them and the first answer tokens.
``reverse_target`` trains the decoder to write the answer's tokens last to first (a number's
last digit first, the order in which carries are computed); answers are turned back before
they are shown or scored.

Shared by training data, evaluation and the decoding CLI, so the same row always becomes the
same token ids; imports nothing heavier than the tokenizer.
"""

from __future__ import annotations

import math
import re
from typing import Any

from qa_seq2seq.data.tokenizer import Tokenizer

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def get_path(row: Any, path: str) -> Any:
    """``get_path({"answers": {"text": ["x"]}}, "answers.text[0]") -> "x"``; None if absent."""
    value = row
    for key, index in _STEP.findall(path):
        try:
            value = value[key] if key else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def as_text(value: Any) -> Any:
    """A number as the text it stands for (a CSV or JSON column of numbers: ``42`` -> ``"42"``);
    NaN (an empty CSV cell) as missing; anything else unchanged."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


NAMES_THE_FIELD = "names the field)"  # ends a missing field's message that names its config key


def text_problem(field: str, value: Any, key: str | None = None, row: Any = None) -> str | None:
    """Why ``value`` cannot serve as the text of ``field`` (missing, not a string, empty). A
    missing field's message names the config ``key`` that chose it and the fields ``row`` has."""
    if value is None:
        if key is None:
            return f"field {field!r} is missing"
        has = ", ".join(map(repr, row)) if isinstance(row, dict) and row else "none"
        return f"field {field!r} is missing (the row's fields: {has}; {key} {NAMES_THE_FIELD}"
    if not isinstance(value, str):
        return f"field {field!r} is {type(value).__name__}, not a string"
    if not value.strip():
        return f"field {field!r} is empty"
    return unicode_problem(value, f"field {field!r}")


def unicode_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be tokenised: a lone surrogate (JSON's ``"\\ud800"``), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"{what} is not valid Unicode (a lone surrogate at character {e.start})"
    return None


def template_fields(template: str) -> list[str]:
    """The field paths a template uses: ``"q: {question} c: {context}"`` -> question, context."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


class SourceBuilder:
    """Turns rows into source text and token ids, honouring the length limit."""

    def __init__(self, question_field: str = "question", source_template: str | None = None,
                 truncate_field: str | None = None, max_length: int = 256,
                 reverse_source: bool = False, reverse_target: bool = False):
        self.template = source_template or "{" + question_field + "}"
        self.fields = template_fields(self.template)
        self.key = "data.source_template" if source_template else "data.question_field"
        if truncate_field is not None and truncate_field not in self.fields:
            from qa_seq2seq.errors import ConfigError

            raise ConfigError(f"data.truncate_field={truncate_field!r} is not used by the "
                              f"template {self.template!r} (fields: {self.fields})")
        self.truncate_field, self.max_length = truncate_field, max_length
        self.reverse_source, self.reverse_target = reverse_source, reverse_target

    @classmethod
    def from_data_config(cls, data: dict[str, Any]) -> SourceBuilder:
        """The builder a run's stored ``data`` config describes (its keys, or their defaults)."""
        return cls(data.get("question_field", "question"), data.get("source_template"),
                   data.get("truncate_field"), int(data.get("max_question_length", 256)),
                   bool(data.get("reverse_source", False)), bool(data.get("reverse_target", False)))

    def values(self, row: Any, name_keys: bool = False) -> dict[str, str] | str:
        """The template's field values, or a problem description (with ``name_keys``, for data
        files: naming the config key that chose a missing field)."""
        values = {}
        for name in self.fields:
            value = as_text(get_path(row, name))
            if problem := text_problem(name, value, self.key if name_keys else None, row):
                return problem
            values[name] = value
        return values

    def text(self, values: dict[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)

    def encode(self, tokenizer: Tokenizer, values: dict[str, str],
               ids: list[int] | None = None) -> tuple[list[int], int]:
        """Token ids the model reads (at most ``max_length``, in reading order), and the uncut
        length.

        With a ``truncate_field`` the cut falls in that field: its tokens are shortened by what
        the whole is too long, then the template is filled again. ``ids``: the filled template's
        ids, when the caller already has them.
        """
        if ids is None:
            ids = tokenizer.encode([self.text(values)])[0]
        length = len(ids)
        if length > self.max_length and self.truncate_field is not None:
            field_ids = tokenizer.encode([values[self.truncate_field]])[0]
            keep = len(field_ids)
            while len(ids) > self.max_length and keep > 0:  # retokenising may shift by a piece
                keep = max(0, keep - (len(ids) - self.max_length))
                shortened = tokenizer.decode([field_ids[:keep]])[0]
                ids = tokenizer.encode([self.text({**values, self.truncate_field: shortened})])[0]
        return self.orient(ids[: self.max_length]), length  # a hard cut only if the rest is too long

    def orient(self, ids: list[int]) -> list[int]:
        """Source ids in the order the encoder reads them (reversed with ``reverse_source``)."""
        return ids[::-1] if self.reverse_source else ids

    def orient_target(self, ids: list[int]) -> list[int]:
        """Answer ids from reading order to the decoder's order, or back (the same reversal)."""
        return ids[::-1] if self.reverse_target else ids
