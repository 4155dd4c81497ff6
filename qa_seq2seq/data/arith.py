"""Generated arithmetic QA: additions and subtractions of integers and decimals (``data=arith``).

The kind of question public arithmetic QA sets ask ("What is -29484 + -631.907871?",
"Subtract 3 from 0.5.", "Total of -1 and 1.6."): several phrasings, signed integers and decimals
of several lengths, exact answers written without trailing zeros (``-631.9``, ``5``).

Splits, all of unique questions, none shared:

- ``train``, ``validation``, ``test``: operands of 1 to ``MAX_DIGITS`` digits (interpolation);
- ``extrapolation``: operands of ``MAX_DIGITS + 1`` to ``MAX_DIGITS + 3`` digits, longer than any
  seen in training (evaluate on it with ``+data.test_file=data/arith/extrapolation.jsonl``).

The project tunes on this set, never on third-party benchmark data. Same seed, same files.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from qa_seq2seq.data.generated import Example, ensure_generated

MAX_DIGITS = 8  # digits per operand in the interpolation splits
MAX_DECIMALS = 6
SPLIT_SIZES = {"train": 40000, "validation": 1000, "test": 2000, "extrapolation": 2000}

ADD = ("{p} + {q}", "Work out {p} + {q}.", "Add {p} and {q}.", "Put together {p} and {q}.",
       "Sum {p} and {q}.", "Total of {p} and {q}.", "Add together {p} and {q}.",
       "What is {p} plus {q}?", "Calculate {p} + {q}.", "What is {p} + {q}?")
SUBTRACT = ("{p} - {q}", "Work out {p} - {q}.", "What is {p} minus {q}?",
            "What is {p} take away {q}?", "What is {q} less than {p}?", "Subtract {q} from {p}.",
            "Calculate {p} - {q}.", "What is {p} - {q}?")


def number(rng: random.Random, digits: int) -> Decimal:
    """A signed integer or decimal with ``digits`` significant digits in all."""
    decimals = 0 if rng.random() < 0.5 else rng.randint(1, min(digits, MAX_DECIMALS))
    integer_digits = digits - decimals
    whole = rng.randint(10 ** (integer_digits - 1), 10**integer_digits - 1) if integer_digits else 0
    fraction = rng.randint(1, 10**decimals - 1) if decimals else 0
    value = Decimal(whole) + Decimal(fraction).scaleb(-decimals)
    return -value if rng.random() < 0.5 else value


def text(value: Decimal) -> str:
    """Exact, no exponent, no trailing zeros: ``Decimal('-631.900')`` -> ``-631.9``."""
    shown = format(value, "f")
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return "0" if shown in ("-0", "") else shown


def question(rng: random.Random, min_digits: int, max_digits: int) -> Example:
    """One question of a random family and phrasing, both operands of ``min_digits`` to ``max_digits``
    digits."""
    p, q = (number(rng, rng.randint(min_digits, max_digits)) for _ in range(2))
    if rng.random() < 0.5:
        family, template, result = "add", rng.choice(ADD), p + q
    else:
        family, template, result = "subtract", rng.choice(SUBTRACT), p - q
    return {"question": template.format(p=text(p), q=text(q)), "answer": text(result),
            "family": family}


def generate(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """``{split: [{"question", "answer", "family"}, ...]}``; families ``add`` and ``subtract``."""
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[Example]] = {}
    for name in ("test", "validation", "extrapolation", "train"):  # held-out first
        longer = name == "extrapolation"
        low, high = (MAX_DIGITS + 1, MAX_DIGITS + 3) if longer else (1, MAX_DIGITS)
        rows: list[Example] = []
        while len(rows) < sizes.get(name, 0):
            example = question(rng, low, high)
            if example["question"] in seen:
                continue
            seen.add(example["question"])
            rows.append(example)
        splits[name] = rows
    return splits


def ensure_splits(out_dir: str | Path, seed: int = 0) -> Path:
    """Generate the arithmetic splits unless all of them already exist."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed)
