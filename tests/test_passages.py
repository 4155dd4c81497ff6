"""The generated passage set: deterministic, answers right and read from the passage, held-out
people and places never seen in training, every kind of question in every split."""

import re

import pytest

from qa_seq2seq.data.passages import generate, pools

FAMILIES = {"place", "name", "number", "word", "comparison"}
SMALL = {"train": 3000, "validation": 300, "test": 300}


@pytest.fixture(scope="module")
def splits():
    return generate(0, SMALL)


def test_deterministic_for_a_seed_and_different_across_seeds(splits):
    assert generate(0, SMALL) == splits
    assert generate(1, SMALL)["train"][:20] != splits["train"][:20]


def test_each_split_has_its_size_and_every_family(splits):
    for name, size in SMALL.items():
        assert len(splits[name]) == size
        assert {row["family"] for row in splits[name]} == FAMILIES


def test_held_out_people_and_places_never_occur_in_training():
    import random

    by_split = pools(random.Random(0))
    for kind in ("people", "places"):
        train = set(by_split["train"][kind])
        for held_out in ("validation", "test"):
            assert by_split[held_out][kind] and not train & set(by_split[held_out][kind])


def test_answers_are_read_from_the_passage_and_right(splits):
    for row in splits["train"] + splits["test"]:
        question, context, answer = row["question"], row["context"], row["answer"]
        assert answer in context, row
        if m := re.fullmatch(r"Who is (older|younger), (\w+) or (\w+)\?", question):
            ages = {}
            for name in m[2], m[3]:
                told = re.search(rf"(?:{name} is (\d+) years old|{name} turned (\d+) this year|"
                                 rf"At (\d+), {name} is)", context)
                ages[name] = int(next(g for g in told.groups() if g))
            expected = max(ages, key=ages.get) if m[1] == "older" else min(ages, key=ages.get)
            assert answer == expected, row
        elif m := re.fullmatch(r"How old is (\w+)\?", question):
            assert re.search(rf"({m[1]} is {answer} years old|{m[1]} turned {answer} this year|"
                             rf"At {answer}, {m[1]} is)", context), row
        elif m := re.fullmatch(r"Where does (\w+) live\?", question):
            assert re.search(rf"{m[1]}\b[^.]*\b{answer}\.|{m[1]}\b[^.]* {answer} (in|since)",
                             context), row
