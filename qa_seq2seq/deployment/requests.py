"""What a client may ask of ``POST /answer``, checked before any work is done: a pure parser of
the request body and its bounds (no model, no I/O)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, NamedTuple

MAX_QUESTIONS = 256  # a request's questions, at most
MAX_BEAM = 16  # beam_size and n_best over HTTP, at most


class BadRequest(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.headers = {} if retry_after is None else {"Retry-After": str(retry_after)}


class AnswerRequest(NamedTuple):
    """A checked request: its questions, and the decoding it asks for."""
    questions: list[Any]  # strings, or objects with the model's fields
    search: str | None  # None: the model's own search (or the one its options belong to)
    options: dict[str, Any]  # the search's options to override
    key: str  # the decode object as canonical JSON; "" for the model's own search


def parse_request(body: Any, max_questions: int, answer_limit: int) -> AnswerRequest:
    """``{"questions": [...], "decode": {"search": ..., option: value}}`` checked: its fields, the
    number of questions (1 to ``max_questions``), and options that would make one request cost
    what many should (``beam_size`` and ``n_best`` at most :data:`MAX_BEAM`, ``max_length`` at
    most ``answer_limit``, the longest answer the model was trained on). Raises BadRequest."""
    if not isinstance(body, dict) or not isinstance(body.get("questions"), list):
        raise BadRequest('the body must be a JSON object {"questions": [...], "decode": {...}}')
    if unknown := sorted(set(body) - {"questions", "decode"}):
        raise BadRequest(f"unknown field(s) {unknown}: the fields are questions and decode")
    questions = body["questions"]
    if not 1 <= len(questions) <= max_questions:
        raise BadRequest(f"{len(questions)} questions: send 1 to {max_questions} a request")
    decode = body.get("decode")
    if decode is None:
        return AnswerRequest(questions, None, {}, "")
    if not isinstance(decode, dict):
        raise BadRequest('"decode" must be an object, e.g. {"search": "beam", "beam_size": 5}')
    options = dict(decode)
    search = options.pop("search", None)
    for key, most in (("beam_size", MAX_BEAM), ("n_best", MAX_BEAM), ("max_length", answer_limit)):
        value = options.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > most:
            why = "the longest answer this model was trained on, <eos> included" \
                if key == "max_length" else "over HTTP"
            raise BadRequest(f"decode.{key}={value}: at most {most} ({why})")
    return AnswerRequest(questions, search, options, json.dumps(decode, sort_keys=True))


def parse_body(body: bytes) -> Any:
    """The request body as JSON, or BadRequest saying why it is not."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON ({e})") from None
    except RecursionError:
        raise BadRequest("the body is not valid JSON (nested too deeply)") from None
