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

import random
from collections.abc import Callable
from pathlib import Path

from qa_seq2seq.data.generated import Example, ensure_generated, write_jsonl

NAMES = ("Mary", "John", "Sandra", "Daniel", "Bill", "Fred", "Julie", "Emma")
PLACES = ("kitchen", "garden", "office", "bathroom", "hallway", "bedroom", "cellar", "park")
COLOURS = ("red", "blue", "green", "black", "white", "pink")
SPLIT_SIZES = {"train": 20000, "validation": 500, "test": 1000}


def arithmetic(rng: random.Random) -> Example:
    """``What is a plus b?`` or ``What is a minus b?`` with 0 <= b <= a <= 20."""
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if rng.random() < 0.5:
        return {"question": f"What is {a} plus {b}?", "answer": str(a + b)}
    a, b = max(a, b), min(a, b)
    return {"question": f"What is {a} minus {b}?", "answer": str(a - b)}


def story(rng: random.Random) -> Example:
    """Two people went to two places; where is one of them?"""
    people = rng.sample(NAMES, 2)
    places = rng.sample(PLACES, len(people))
    facts = " ".join(f"{p} went to the {q}." for p, q in zip(people, places))
    asked = rng.randrange(len(people))
    # The question comes first, then its context, as in "question: ... context: ..." QA formats.
    return {"question": f"Where is {people[asked]}? {facts}", "answer": places[asked]}


def compare(rng: random.Random) -> Example:
    """The larger or the smaller of two numbers below 100."""
    a, b = rng.sample(range(100), 2)
    larger = rng.random() < 0.5
    answer = max(a, b) if larger else min(a, b)
    word = "larger" if larger else "smaller"
    return {"question": f"Which is {word}, {a} or {b}?", "answer": str(answer)}


def count(rng: random.Random) -> Example:
    """How many times a colour occurs in a list of three to six colours."""
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


def ensure_splits(out_dir: str | Path, seed: int = 0) -> Path:
    """Generate the toy splits unless all three files already exist."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed)
