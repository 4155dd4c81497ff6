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


RELATIONS = {"spouse", "parent", "child", "grandparent", "grandchild", "sibling", "in-law"}


def test_small_pools_make_training_names_recur_and_held_out_names_stay_new():
    splits = generate(0, SMALL, people={"train": 40}, places={"train": 20})
    names = {m for r in splits["train"] for m in re.findall(r"\b[A-Z][a-z]+\b", r["context"])}
    assert len(names) <= 40 + 20 + 3  # the pools, and the odd capitalised sentence start
    held_out = {r["answer"] for r in splits["test"] if r["family"] in ("place", "name")}
    assert held_out and not held_out & names


def test_relations_are_told_by_marriages_and_children_and_answered_right():
    from qa_seq2seq.data.passages import Member, relation

    def person(name, male):
        return Member(name, male)

    gran, grandpa, mum, dad, kid, aunt, uncle = (person(n, m) for n, m in [
        ("Gran", False), ("Grandpa", True), ("Mum", False), ("Dad", True), ("Kid", True),
        ("Aunt", False), ("Uncle", True)])
    for a, b in ((gran, grandpa), (mum, dad), (aunt, uncle)):
        a.spouse, b.spouse = b, a
    for child, parents in ((mum, (gran, grandpa)), (aunt, (gran, grandpa)), (kid, (mum, dad))):
        child.parents = list(parents)
        for p in parents:
            p.children.append(child)
    expected = {(dad, mum): "husband", (mum, kid): "mother", (kid, dad): "son",
                (gran, kid): "grandmother", (kid, grandpa): "grandson", (aunt, mum): "sister",
                (grandpa, dad): "father-in-law", (dad, gran): "son-in-law",
                (uncle, mum): "brother-in-law", (mum, uncle): "sister-in-law",
                (dad, aunt): "brother-in-law", (aunt, kid): None}
    for (x, y), answer in expected.items():
        assert (relation(x, y) or (None, None))[1] == answer, (x.name, y.name)


def test_relation_passages_and_their_larger_extrapolation_families():
    splits = generate(0, {**SMALL, "extrapolation": 300}, kinds=["relations"])
    for name in ("train", "test", "extrapolation"):
        assert {r["family"] for r in splits[name]} == RELATIONS
    sentences = {name: max(r["context"].count(".") for r in splits[name]) for name in splits}
    assert sentences["extrapolation"] > sentences["train"]  # bigger families than in training
    row = splits["train"][0]
    asked = re.match(r"(?:What is (\w+) to (\w+)\?|How is (\w+) related to (\w+)\?|"
                     r"(\w+) is (\w+)'s what\?)", row["question"])
    assert asked and all(n in row["context"] for n in asked.groups() if n)


def test_both_kinds_mix_and_settings_are_checked():
    from qa_seq2seq.errors import ConfigError

    mixed = generate(0, {"train": 600}, kinds=["facts", "relations"])["train"]
    assert {r["family"] for r in mixed} >= {"place", "spouse"}
    with pytest.raises(ConfigError, match=r"data.generate.kinds=\['stories'\]: choose from"):
        generate(0, SMALL, kinds=["stories"])
    with pytest.raises(ConfigError, match="data.generate.people.train=3: a passage needs at "
                                          "least 12 people"):
        generate(0, SMALL, people={"train": 3})
    with pytest.raises(ConfigError, match="data.generate.places: no split 'extrapolation'"):
        generate(0, SMALL, places={"extrapolation": 30})


def test_changed_settings_generate_the_files_again(tmp_path, monkeypatch):
    from qa_seq2seq.data import passages

    monkeypatch.setattr(passages, "SPLIT_SIZES",
                        {"train": 60, "validation": 10, "test": 10, "extrapolation": 10})
    passages.ensure_splits(tmp_path, people={"train": 30})
    first = (tmp_path / "train.jsonl").read_text()
    passages.ensure_splits(tmp_path, people={"train": 30})  # the same settings: kept
    assert (tmp_path / "train.jsonl").read_text() == first
    passages.ensure_splits(tmp_path, people={"train": 300})
    assert (tmp_path / "train.jsonl").read_text() != first
    assert '"train": 300' in (tmp_path / "generated.json").read_text()
