"""Generated questions about the letters of words and texts (``data=characters``).

Families, each in several phrasings:

- ``backward``: spell a word backward (``Spell "garden" backward.`` -> ``nedrag``);
- ``count``: how often a letter occurs in a text of a few words (``0`` when it does not);
- ``first`` and ``last``: a word's first or last letter;
- ``after``: the letter right after a given one in a word (one that occurs there once);
- ``sorted``: a word's letters in alphabetical order.

Words are made of English-like syllables. Validation and test words (and the words of their
texts) come from a pool never used in training, so a model must read them letter by letter
rather than remember them. The ``extrapolation`` split asks the same of longer words (four or
five syllables) and texts (seven to nine words). Same seed, same files.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from functools import partial
from pathlib import Path

from qa_seq2seq.data.generated import Example, ensure_generated

SPLIT_SIZES = {"train": 40000, "validation": 1000, "test": 2000, "extrapolation": 2000}
HELD_OUT_WORDS, TRAIN_WORDS = 3000, 30000  # the two disjoint word pools

ONSETS = ("b c d f g h j k l m n p r s t v w y z qu br cr dr fr gr pr tr bl cl fl gl pl sl sh "
          "ch th st sp sk sw wh").split()
VOWELS = "a e i o u y ai ea ee oo ou ie".split()
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "st", "ck", "ng", "rt", "ld")

PHRASINGS = {
    "backward": ('Spell "{word}" backward.', "Spell {word} backwards.",
                 'What is "{word}" written backward?', 'Reverse the letters of "{word}".',
                 "Write {word} in reverse."),
    "count": ('How many times does the letter "{letter}" appear in the text: "{text}"?',
              'How many {letter}\'s are in "{text}"?', 'Count the letter {letter} in "{text}".',
              'In "{text}", how many times does "{letter}" occur?'),
    "first": ('What is the first letter of "{word}"?', 'Which letter does "{word}" start with?',
              "First letter of {word}?"),
    "last": ('What is the last letter of "{word}"?', 'Which letter does "{word}" end with?',
             "Last letter of {word}?"),
    "after": ('In "{word}", which letter comes right after "{letter}"?',
              'Which letter follows "{letter}" in "{word}"?',
              "What letter is after {letter} in {word}?"),
    "sorted": ('Write the letters of "{word}" in alphabetical order.',
               'Sort the letters of "{word}".', "Put the letters of {word} in alphabetical order."),
}
FAMILIES = tuple(PHRASINGS)


def word(rng: random.Random, syllables: tuple[int, int]) -> str:
    """An English-like word of ``syllables`` (fewest, most) syllables."""
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                   for _ in range(rng.randint(*syllables)))


def pools(rng: random.Random) -> tuple[list[str], list[str]]:
    """Disjoint (held-out, training) word pools of one to three syllables."""
    words: set[str] = set()
    while len(words) < HELD_OUT_WORDS + TRAIN_WORDS:
        words.add(word(rng, (1, 3)))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered[:HELD_OUT_WORDS], ordered[HELD_OUT_WORDS:]


def question(rng: random.Random, family: str, pick: Callable[[], str],
             text_words: tuple[int, int]) -> Example | None:
    """One ``family`` question about words from ``pick``; None when the word drawn does not
    fit the family (``after`` needs a letter that occurs once, not last)."""
    phrasing = rng.choice(PHRASINGS[family])
    if family == "count":
        text = " ".join(pick() for _ in range(rng.randint(*text_words)))
        present = sorted(set(text) - {" "})
        letter = rng.choice(present) if rng.random() < 0.8 else rng.choice(string.ascii_lowercase)
        return {"question": phrasing.format(letter=letter, text=text),
                "answer": str(text.count(letter)), "family": family}
    w = pick()
    if family == "after":
        once = [i for i, c in enumerate(w[:-1]) if w.count(c) == 1]
        if not once:
            return None
        i = rng.choice(once)
        return {"question": phrasing.format(word=w, letter=w[i]), "answer": w[i + 1],
                "family": family}
    answer = {"backward": w[::-1], "first": w[0], "last": w[-1],
              "sorted": "".join(sorted(w))}[family]
    return {"question": phrasing.format(word=w), "answer": answer, "family": family}


def generate(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """``{split: [{"question", "answer", "family"}, ...]}``, families in equal shares."""
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rng = random.Random(seed)
    held_out, training = pools(rng)
    seen: set[str] = set()
    splits: dict[str, list[Example]] = {}
    for name in ("test", "validation", "extrapolation", "train"):  # held-out first
        if name == "extrapolation":  # longer words, never in a pool, and longer texts
            pick, text_words = partial(word, rng, (4, 5)), (7, 9)
        else:
            pick, text_words = partial(rng.choice, training if name == "train" else held_out), (2, 6)
        rows: list[Example] = []
        while len(rows) < sizes.get(name, 0):
            example = question(rng, FAMILIES[len(rows) % len(FAMILIES)], pick, text_words)
            if example is None or example["question"] in seen:
                continue
            seen.add(example["question"])
            rows.append(example)
        rng.shuffle(rows)
        splits[name] = rows
    return splits


def ensure_splits(out_dir: str | Path, seed: int = 0) -> Path:
    """Generate the character splits unless they all exist."""
    return ensure_generated(out_dir, generate, SPLIT_SIZES, seed)
