"""Answer questions with a trained model, from stdin, a file, or an interactive prompt.

    echo "What is 3 plus 4?" | python -m qa_seq2seq.decode --checkpoint outputs/toy_lstm/<run>
    python -m qa_seq2seq.decode --input questions.jsonl --format jsonl --decode beam beam_size=5 n_best=3

The search is the one the model was validated with in training (stored in the checkpoint), or
``--decode greedy|beam|sample``; ``KEY=VALUE`` arguments override its options, checked by name.

Input lines are plain questions, or JSON objects with the fields the model was trained on (a
``question`` field, or those of its ``source_template``, e.g. ``question`` and ``context``, made
into one source and cut exactly as in training). Output has one line per input line, in order:
the answer (``--format text``), or a JSON object with the answer, its score and the n-best list
(``--format jsonl``). A line that cannot be answered (empty, too long,
not UTF-8, bad JSON) gets a message on stderr and an empty answer (text) or an ``error`` field
(jsonl); the other lines are still answered.

This path loads only torch, sentencepiece and the weights: no Lightning, no datasets, no Hydra
composition, so a cold start answers in about the time it takes to import torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

from qa_seq2seq import __version__
from qa_seq2seq.data.tokenizer import EOS_ID
from qa_seq2seq.decoding.answerer_base import AnswererBase, QuestionError
from qa_seq2seq.errors import CheckpointError
from qa_seq2seq.model_args import make_answerer, model_parser, parse_model_args
from qa_seq2seq.reporting import entry_point

CHUNK = 1024  # questions answered per round when reading a stream


class Question(NamedTuple):
    """One input line: its number, what it holds, and why it is refused or what the model reads."""
    line: int
    value: str | dict | None  # the plain line or the JSON object; None when refused
    error: str | None = None
    text: str | None = None  # the source the model reads, once built
    ids: list[int] | None = None  # its token ids, in the order the encoder reads them


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The decoding CLI's arguments (the shared model arguments, input, output, format)."""
    parser = model_parser(
        "python -m qa_seq2seq.decode", __doc__.split("\n\n")[0] + ".",
        "  echo 'Which is larger, 31 or 13?' | python -m qa_seq2seq.decode\n"
        "  python -m qa_seq2seq.decode --checkpoint RUN_DIR --input q.txt --output a.txt\n"
        "  python -m qa_seq2seq.decode --decode beam beam_size=5 n_best=3 --format jsonl < q.jsonl\n"
        "  python -m qa_seq2seq.decode --decode sample temperature=0.7 top_p=0.9 seed=1\n"
        "  python -m qa_seq2seq.decode --model exported/toy-onnx   # an ONNX export, no torch", __version__)
    parser.add_argument("--input", metavar="FILE", help="questions, one per line (default: stdin)")
    parser.add_argument("--output", metavar="FILE", help="answers (default: stdout)")
    parser.add_argument("--format", choices=("text", "jsonl"), default="text",
                        help="text: one answer per line; jsonl: answer, score, n-best")
    parser.add_argument("--attention", action="store_true",
                        help="jsonl only: add each answer's attention over the question (models "
                             "trained with model/net/attention)")
    args = parse_model_args(parser, argv)
    if args.attention and args.format != "jsonl":
        parser.error("--attention needs --format jsonl (text output has one answer per line)")
    return args


def read_questions(stream: IO[bytes]) -> Iterator[Question]:
    """One Question per input line; refused lines carry an error instead of text."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            yield Question(number, None, f"not valid UTF-8 ({e.reason} at byte {e.start})")
            continue
        if line.lstrip().startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                yield Question(number, None, f"invalid JSON ({e.msg} at column {e.colno})")
                continue
            except RecursionError:
                yield Question(number, None, "invalid JSON (nested too deeply)")
                continue
            yield Question(number, value) if isinstance(value, dict) else Question(
                number, None, f"a JSON {type(value).__name__}, not an object")
            continue
        if not line.strip():
            yield Question(number, None, "empty question")
            continue
        yield Question(number, line)


class Session:
    """The CLI's side of an ``Answerer``: line numbers, refused lines, and output format."""

    def __init__(self, answerer: AnswererBase, args: argparse.Namespace):
        self.answerer, self.format, self.attention = answerer, args.format, args.attention
        if self.attention and answerer.model.decoder.attention is None:
            raise CheckpointError(f"--attention: {answerer.checkpoint.path} has no attention "
                                  "(trained with model/net/attention=none)")

    def __call__(self, questions: list[Question]) -> Iterator[tuple[Question, list | str]]:
        """(question, n-best hypotheses) or (question, error message), in input order."""
        checked = [self._source(q) for q in questions]
        keep = [i for i, q in enumerate(checked) if q.error is None]
        results = self.answerer.answer_ids([checked[i].ids for i in keep]) if keep else []
        by_index = dict(zip(keep, results))
        for i, q in enumerate(checked):
            yield q, by_index.get(i, q.error)

    def _source(self, q: Question) -> Question:
        if q.error:
            return q
        try:
            text, ids = self.answerer.source(q.value)
        except QuestionError as e:
            return q._replace(error=str(e))
        return q._replace(text=text, ids=ids)

    def render(self, question: Question, result: list | str) -> str:
        if isinstance(result, str):
            if self.format == "text":
                return ""
            return json.dumps({"line": question.line, "error": result})
        if self.format == "text":
            return result[0].text
        row = {
            "line": question.line, "question": question.text, "answer": result[0].text,
            "score": result[0].score,
            "n_best": [{"answer": h.text, "score": h.score, "normalized_score": h.normalized_score,
                        "finished": h.finished} for h in result],
        }
        if self.attention:
            from qa_seq2seq.decoding.inference import alignment

            best, answerer = result[0], self.answerer
            weights = alignment(answerer.model, question.ids, best, answerer.device)
            answer = best.tokens + ([EOS_ID] if best.finished else [])
            row["attention"] = {"source": answerer.tokenizer.id_to_piece(question.ids),
                                "answer": answerer.tokenizer.id_to_piece(answer),
                                "weights": [[round(w, 4) for w in r] for r in weights]}
        return json.dumps(row, ensure_ascii=False)


def chunks(items: Iterable[Question], size: int) -> Iterator[list[Question]]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily."""
    chunk: list[Question] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@entry_point
def main(argv: list[str] | None = None) -> int:
    """Answer each input line and write one answer per line; returns the exit status."""
    args = parse_args(argv)
    session = Session(make_answerer(args), args)
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    interactive = args.input is None and sys.stdin.isatty()
    try:
        if interactive:
            print("Type a question and press Enter (Ctrl-D to quit).", file=sys.stderr)
        stream = _prompted(source) if interactive else source
        for chunk in chunks(read_questions(stream), 1 if interactive else CHUNK):
            for question, result in session(chunk):
                if isinstance(result, str):
                    print(f"line {question.line}: {result}; skipped", file=sys.stderr)
                print(session.render(question, result), file=sink, flush=interactive)
    finally:
        if args.input:
            source.close()
        if args.output:
            sink.close()
    return 0


def _prompted(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        print("question> ", end="", file=sys.stderr, flush=True)
        line = stream.readline()
        if not line:
            return
        yield line


if __name__ == "__main__":
    sys.exit(main())
