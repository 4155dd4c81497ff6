"""Generated arithmetic QA: sums and differences of integers and decimals (``data=arith``).

The kind of question public arithmetic QA sets ask ("What is -29484 + -631.907871?",
"Subtract 3 from 0.5.", "Total of -1 and 1.6.", "434 - 201 - 661 + 136 + 290 ="): several
phrasings, signed integers and decimals of several lengths, exact answers written without
trailing zeros (``-631.9``, ``5``).

Settings (``data.generate.*``): ``terms``, the fewest and most numbers a question adds or
subtracts (``[2, 2]``: two operands, families ``add`` and ``subtract``; more: chains of mixed
``+`` and ``-``, family ``N_terms``); ``max_digits`` per number; ``decimals`` and
``negatives``, whether numbers may have a fraction or a sign of their own.

Splits, all of unique questions, none shared:

- ``train``, ``validation``, ``test``: numbers of 1 to ``max_digits`` digits (interpolation);
- ``extrapolation``: beyond anything seen in training (evaluate on it with
  ``+data.test_file=data/arith/extrapolation.jsonl``): with two operands, numbers of
  ``max_digits + 1`` to ``max_digits + 3`` digits; with chains, chains of up to four more terms.

The project tunes on this set, never on third-party benchmark data. Same seed, same files.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from qa_seq2seq.data.generated import Example, ensure_generated
from qa_seq2seq.errors import ConfigError

MAX_DIGITS = 8  # digits per operand in the interpolation splits, by default
MAX_DECIMALS = 6
LONGER_CHAINS = 4  # the extrapolation split's chains have up to this many more terms
SPLIT_SIZES = {"train": 40000, "validation": 1000, "test": 2000, "extrapolation": 2000}

ADD = ("{p} + {q}", "Work out {p} + {q}.", "Add {p} and {q}.", "Put together {p} and {q}.",
       "Sum {p} and {q}.", "Total of {p} and {q}.", "Add together {p} and {q}.",
       "What is {p} plus {q}?", "Calculate {p} + {q}.", "What is {p} + {q}?")
SUBTRACT = ("{p} - {q}", "Work out {p} - {q}.", "What is {p} minus {q}?",
            "What is {p} take away {q}?", "What is {q} less than {p}?", "Subtract {q} from {p}.",
            "Calculate {p} - {q}.", "What is {p} - {q}?")
CHAIN = ("{chain}", "{chain} =", "{chain} = ?", "What is {chain}?", "Calculate {chain}.",
         "Work out {chain}.", "Evaluate {chain}.", "What is the value of {chain}?",
         "Compute {chain}.", "What do you get for {chain}?")


def number(rng: random.Random, digits: int, decimals: bool = True,
           negatives: bool = True) -> Decimal:
    """An integer, or a decimal when ``decimals``, with ``digits`` significant digits in all; of
    either sign when ``negatives``."""
    decimals = 0 if not decimals or rng.random() < 0.5 else rng.randint(1, min(digits, MAX_DECIMALS))
    integer_digits = digits - decimals
    whole = rng.randint(10 ** (integer_digits - 1), 10**integer_digits - 1) if integer_digits else 0
    fraction = rng.randint(1, 10**decimals - 1) if decimals else 0
    value = Decimal(whole) + Decimal(fraction).scaleb(-decimals)
    return -value if negatives and rng.random() < 0.5 else value


def text(value: Decimal) -> str:
    """Exact, no exponent, no trailing zeros: ``Decimal('-631.900')`` -> ``-631.9``."""
    shown = format(value, "f")
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return "0" if shown in ("-0", "") else shown


def question(rng: random.Random, min_digits: int, max_digits: int, decimals: bool = True,
             negatives: bool = True) -> Example:
    """One question of a random family and phrasing, both operands of ``min_digits`` to ``max_digits``
    digits."""
    p, q = (number(rng, rng.randint(min_digits, max_digits), decimals, negatives)
            for _ in range(2))
    if rng.random() < 0.5:
        family, template, result = "add", rng.choice(ADD), p + q
    else:
        family, template, result = "subtract", rng.choice(SUBTRACT), p - q
    return {"question": template.format(p=text(p), q=text(q)), "answer": text(result),
            "family": family}


def chain(rng: random.Random, terms: int, max_digits: int, decimals: bool = True,
          negatives: bool = True) -> Example:
    """``terms`` numbers of 1 to ``max_digits`` digits joined by ``+`` and ``-`` at random, in a
    random phrasing: ``434 - 201 - 661 + 136 =``; family ``N_terms``."""
    numbers = [number(rng, rng.randint(1, max_digits), decimals, negatives) for _ in range(terms)]
    written, result = text(numbers[0]), numbers[0]
    for n in numbers[1:]:
        sign = rng.choice("+-")
        written += f" {sign} {text(n)}"
        result += n if sign == "+" else -n
    return {"question": rng.choice(CHAIN).format(chain=written), "answer": text(result),
            "family": f"{terms}_terms"}


def generate(seed: int = 0, sizes: dict[str, int] | None = None, terms: Sequence[int] = (2, 2),
             max_digits: int = MAX_DIGITS, decimals: bool = True,
             negatives: bool = True) -> dict[str, list[Example]]:
    """``{split: [{"question", "answer", "family"}, ...]}`` (see the module docstring)."""
    fewest, most = check_terms(terms)
    if max_digits < 1:
        raise ConfigError(f"data.generate.max_digits={max_digits}: give at least 1")
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[Example]] = {}
    for name in ("test", "validation", "extrapolation", "train"):  # held-out first
        longer = name == "extrapolation"
        rows: list[Example] = []
        while len(rows) < sizes.get(name, 0):
            if most == 2:  # two operands, in their own phrasings
                low, high = (max_digits + 1, max_digits + 3) if longer else (1, max_digits)
                example = question(rng, low, high, decimals, negatives)
            else:
                count = rng.randint(most + 1, most + LONGER_CHAINS) if longer else \
                    rng.randint(fewest, most)
                example = chain(rng, count, max_digits, decimals, negatives)
            if example["question"] in seen:
                continue
            seen.add(example["question"])
            rows.append(example)
        splits[name] = rows
    return splits


def check_terms(terms: Sequence[int]) -> tuple[int, int]:
    """``terms`` as (fewest, most), or a :class:`ConfigError` naming what would work."""
    if len(terms) != 2 or not 2 <= terms[0] <= terms[1]:
        raise ConfigError(f"data.generate.terms={list(terms)}: give [fewest, most] numbers a "
                          "question adds or subtracts, 2 <= fewest <= most, e.g. [2, 6]")
    return terms[0], terms[1]


def ensure_splits(out_dir: str | Path, seed: int = 0, terms: Sequence[int] = (2, 2),
                  max_digits: int = MAX_DIGITS, decimals: bool = True,
                  negatives: bool = True) -> Path:
    """Generate the arithmetic splits unless they exist with these settings (bad settings are
    refused by :func:`generate`: they never match the settings a folder was made with)."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed, terms=list(terms),
                            max_digits=max_digits, decimals=decimals, negatives=negatives)
