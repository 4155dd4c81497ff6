"""The embedded default data: a small, seeded, templated question-answering task.

Four families, each needing the model to read the question rather than copy it:

- ``arithmetic``: "What is 12 plus 7?" -> "19"
- ``story``: "Where is Mary? Mary went to the kitchen. John went to the garden." -> "kitchen"
- ``compare``: "Which is larger, 31 or 13?" -> "31"
- ``count``: "How many times does red appear in: red blue red green?" -> "2"

Splits are drawn without replacement from one pool of unique questions, so no test or validation
question appears in train. The same seed always writes the same files.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

NAMES = ("Mary", "John", "Sandra", "Daniel", "Bill", "Fred", "Julie", "Emma")
PLACES = ("kitchen", "garden", "office", "bathroom", "hallway", "bedroom", "cellar", "park")
COLOURS = ("red", "blue", "green", "black", "white", "pink")
SPLIT_SIZES = {"train": 20000, "validation": 500, "test": 1000}
log = logging.getLogger(__name__)

Example = dict[str, str]


def arithmetic(rng: random.Random) -> Example:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if rng.random() < 0.5:
        return {"question": f"What is {a} plus {b}?", "answer": str(a + b)}
    a, b = max(a, b), min(a, b)
    return {"question": f"What is {a} minus {b}?", "answer": str(a - b)}


def story(rng: random.Random) -> Example:
    people = rng.sample(NAMES, 2)
    places = rng.sample(PLACES, len(people))
    facts = " ".join(f"{p} went to the {q}." for p, q in zip(people, places))
    asked = rng.randrange(len(people))
    # The question comes first, then its context, as in "question: ... context: ..." QA formats.
    return {"question": f"Where is {people[asked]}? {facts}", "answer": places[asked]}


def compare(rng: random.Random) -> Example:
    a, b = rng.sample(range(100), 2)
    larger = rng.random() < 0.5
    answer = max(a, b) if larger else min(a, b)
    word = "larger" if larger else "smaller"
    return {"question": f"Which is {word}, {a} or {b}?", "answer": str(answer)}


def count(rng: random.Random) -> Example:
    words = rng.choices(COLOURS[:4], k=rng.randint(3, 6))
    asked = rng.choice(COLOURS[:4])
    return {
        "question": f"How many times does {asked} appear in: {' '.join(words)}?",
        "answer": str(words.count(asked)),
    }


FAMILIES: dict[str, Callable[[random.Random], Example]] = {
    "arithmetic": arithmetic,
    "story": story,
    "compare": compare,
    "count": count,
}


def generate(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """Draw disjoint splits of unique questions, families interleaved round-robin.

    Returns ``{split: [{"question", "answer", "family"}, ...]}``.
    """
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rng = random.Random(seed)
    seen: set[str] = set()
    pool: list[Example] = []
    needed = sum(sizes.values())
    # Each family contributes equally while it still has unseen questions; arithmetic's pool is
    # small (672 questions), so the others fill the rest.
    exhausted: set[str] = set()
    misses = dict.fromkeys(FAMILIES, 0)
    while len(pool) < needed:
        if len(exhausted) == len(FAMILIES):
            raise ValueError(f"the toy families hold fewer than {needed} unique questions")
        for family, draw in FAMILIES.items():
            if family in exhausted or len(pool) >= needed:
                continue
            example = draw(rng)
            if example["question"] in seen:
                misses[family] += 1
                if misses[family] > 1000:
                    exhausted.add(family)
                continue
            misses[family] = 0
            seen.add(example["question"])
            pool.append({**example, "family": family})
    rng.shuffle(pool)
    splits, start = {}, 0
    for name in ("test", "validation", "train"):  # held-out splits first: they get every family
        splits[name] = pool[start : start + sizes[name]]
        start += sizes[name]
    return splits


def write_splits(out_dir: str | Path, seed: int = 0, sizes: dict[str, int] | None = None) -> Path:
    """Write ``{train,validation,test}.jsonl`` under ``out_dir`` (one JSON object per line)."""
    out_dir = Path(out_dir)
    for name, rows in generate(seed, sizes).items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    return out_dir


def write_jsonl(path: Path, rows: list[Example]) -> None:
    """One JSON object per line, written atomically: a killed run never leaves half a split, and
    runs that generate the same split at once (a sweep's first jobs) each rename a whole file."""
    _write_atomically(path, "".join(json.dumps(row) + "\n" for row in rows))


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def ensure_generated(out_dir: str | Path, generate: Callable[..., dict[str, list[Example]]],
                     splits: Iterable[str], seed: int = 0, **settings: Any) -> Path:
    """Write ``generate(seed, **settings)``'s splits under ``out_dir`` unless all of ``splits``
    exist and were made with the same seed and settings (``generated.json`` says which): a
    changed setting regenerates the files instead of training on the old ones."""
    out_dir = Path(out_dir)
    made = {"seed": seed, **settings}
    manifest = out_dir / "generated.json"
    current = all((out_dir / f"{name}.jsonl").exists() for name in splits) and (
        _read_json(manifest) == made if settings else True)
    if not current:
        if manifest.exists():
            log.warning("%s was generated with other settings: generating it again with %s",
                        out_dir, made)
        for name, rows in generate(seed, **settings).items():
            write_jsonl(out_dir / f"{name}.jsonl", rows)
        if settings:
            _write_atomically(manifest, json.dumps(made, sort_keys=True) + "\n")
    return out_dir


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def ensure_splits(out_dir: str | Path, seed: int = 0) -> Path:
    """Generate the toy splits unless all three files already exist."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed)
