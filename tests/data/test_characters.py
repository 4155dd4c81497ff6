"""data/characters.py: seeded, every answer right for its family, held-out words never in a
training question, the extrapolation split longer, the registry allows its generator."""

import re
from collections import Counter

from qa_seq2seq.data.characters import FAMILIES, PHRASINGS, generate

SIZES = {"train": 600, "validation": 60, "test": 120, "extrapolation": 120}


def read(row: dict) -> dict[str, str]:
    """The word, text and letter a question names, by the phrasing that reads it."""
    for phrasing in sorted(PHRASINGS[row["family"]], key=len, reverse=True):
        pattern = re.escape(phrasing)
        for name in ("word", "text", "letter"):
            pattern = pattern.replace(rf"\{{{name}\}}", rf"(?P<{name}>[a-z ]+?)")
        if m := re.fullmatch(pattern, row["question"]):
            return m.groupdict()
    raise AssertionError(f"no {row['family']} phrasing reads {row['question']!r}")


def right_answer(family: str, asked: dict[str, str]) -> str:
    word, letter = asked.get("word", ""), asked.get("letter", "")
    if family == "count":
        return str(asked["text"].count(letter))
    if family == "after":
        assert word.count(letter) == 1 and not word.endswith(letter)
        return word[word.index(letter) + 1]
    return {"backward": word[::-1], "first": word[:1], "last": word[-1:],
            "sorted": "".join(sorted(word))}[family]


def test_seeded_every_family_answered_right():
    splits = generate(2, SIZES)
    assert splits == generate(2, SIZES) != generate(3, SIZES)
    for rows in splits.values():
        assert set(Counter(r["family"] for r in rows)) == set(FAMILIES)
        for row in rows:
            assert row["answer"] == right_answer(row["family"], read(row)), row
    questions = [r["question"] for rows in splits.values() for r in rows]
    assert len(set(questions)) == len(questions)


def test_held_out_words_never_occur_in_training_and_extrapolation_is_longer():
    splits = generate(2, SIZES)

    def words(rows):
        found = set()
        for row in rows:
            asked = read(row)
            found.update((asked.get("word") or asked["text"]).split())
        return found

    training = words(splits["train"])
    assert not (words(splits["test"]) | words(splits["validation"])) & training
    longest_trained = max(len(w) for w in training)
    extrapolation = words(splits["extrapolation"])
    assert sum(len(w) > longest_trained for w in extrapolation) > len(extrapolation) / 4
    counts = [int(r["answer"]) for r in splits["train"] if r["family"] == "count"]
    assert 0 in counts and max(counts) >= 3  # absent letters are asked about too
