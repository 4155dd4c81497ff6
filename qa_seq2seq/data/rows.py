"""Reading and preparing rows: the ``Dataset.map`` functions that turn raw rows into source and
target text (:class:`Prepare`) and token ids (:class:`Encode`), and the file helpers the data
modules share (line numbers for messages, CSV columns as text, a JSON Lines scan that names each
bad line). Shared by the in-memory and streaming data modules (``qa_seq2seq.data.datamodule``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import Any

import datasets

from qa_seq2seq.data.fields import SourceBuilder, as_text, get_path, text_problem
from qa_seq2seq.data.tokenizer import Tokenizer


class Prepare:
    """``Dataset.map`` function: raw rows -> ``source`` and ``target`` text, ``family``, and a
    ``problem`` (None for a usable row)."""

    def __init__(self, builder: SourceBuilder, answer_field: str, family_field: str | None):
        self.builder, self.answer_field, self.family_field = builder, answer_field, family_field

    def row(self, row: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """(source, target, problem): the texts of a usable row, or what makes it unusable."""
        values = self.builder.values(row, name_keys=True)
        target = as_text(get_path(row, self.answer_field))
        problem = values if isinstance(values, str) else text_problem(self.answer_field, target,
                                                                      "data.answer_field", row)
        if problem:
            return None, None, problem
        return self.builder.text(values), target, None

    def problem(self, row: dict[str, Any]) -> str | None:
        return self.row(row)[2]

    def __call__(self, rows: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"source": [], "target": [], "family": [], "problem": []}
        for i in range(len(next(iter(rows.values())))):
            row = {key: column[i] for key, column in rows.items()}
            for key, value in zip(("source", "target", "problem"), self.row(row)):
                out[key].append(value)
            family = get_path(row, self.family_field) if self.family_field else None
            out["family"].append(None if family is None else str(family))
        return out


class Encode:
    """``Dataset.map`` function: prepared rows -> token ids, cut to the length limits.

    A plain class holding the tokenizer bytes, so ``datasets`` fingerprints it by content and
    reuses the cached result on the next run.
    """

    def __init__(self, tokenizer: Tokenizer, builder: SourceBuilder, max_answer_length: int):
        self.tokenizer, self.builder, self.max_answer_length = tokenizer, builder, max_answer_length

    def __call__(self, rows: dict[str, list], indices: list[int]) -> dict[str, list]:
        src = self.tokenizer.encode(rows["source"])
        tgt = self.tokenizer.encode(rows["target"])
        lengths = [(len(s), len(t)) for s, t in zip(src, tgt)]  # before any cut
        truncated = []
        for i, ids in enumerate(src):
            cut = len(ids) > self.builder.max_length
            if cut:  # rare: only then are the row's fields needed again
                values = self.builder.values({key: column[i] for key, column in rows.items()})
                src[i], _ = self.builder.encode(self.tokenizer, values, ids)
            else:
                src[i] = self.builder.orient(ids)
            truncated.append(cut or len(tgt[i]) > self.max_answer_length)
        return {"src_ids": src,
                "tgt_ids": [self.builder.orient_target(ids[: self.max_answer_length]) for ids in tgt],
                "truncated": truncated, "lengths": lengths, "index": indices}


def column(ds: datasets.Dataset, name: str) -> list:
    """A whole column as a Python list, read through Arrow: far faster than ``list(ds[name])``,
    which formats row by row (seconds per pass over 40k rows, inside a trainer.max_time budget)."""
    return ds.with_format("arrow")[name].to_pylist()


def csv_text_features(file: str) -> datasets.Features:
    """Every column of a CSV file (named by its header) as a string."""
    with open(file, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    return datasets.Features({name: datasets.Value("string") for name in header})


def is_empty(file: str, probe: int = 1 << 16) -> bool:
    """Nothing but whitespace (checked in the first 64 KiB; a larger file is not empty)."""
    with open(file, "rb") as f:
        head = f.read(probe)
    return not head.strip() and len(head) < probe


def line_numbers(path: str) -> list[int]:
    """1-based line number of each non-blank line (the rows ``datasets`` reads)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def scan_jsonl(path: str, check: Callable[[dict], str | None]
                ) -> tuple[list[dict], list[int], list[tuple[int, str]]]:
    """Read ``path`` line by line: the usable rows (``check`` gives None), their line numbers,
    and the other lines' problems."""
    rows, lines, problems = [], [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                problems.append((n, f"not valid UTF-8 ({e.reason} at byte {e.start})"))
                continue
            except json.JSONDecodeError as e:
                problems.append((n, f"not valid JSON ({e.msg} at column {e.colno}); each line "
                                    'must be one object like {"question": "...", "answer": "..."}'))
                continue
            except RecursionError:
                problems.append((n, "not valid JSON (nested too deeply)"))
                continue
            problem = (f"a JSON {type(row).__name__}, not an object"
                       if not isinstance(row, dict) else check(row))
            if problem:
                problems.append((n, problem))
                continue
            rows.append(row)
            lines.append(n)
    return rows, lines, problems
