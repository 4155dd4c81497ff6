import json
import re

from qa_seq2seq.data.toy import FAMILIES, generate, write_splits


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert generate(3) == generate(3)
    assert generate(3)["train"][:50] != generate(4)["train"][:50]


def test_held_out_questions_never_appear_in_train_and_every_family_is_tested():
    splits = generate(0)
    train = {row["question"] for row in splits["train"]}
    for held_out in ("validation", "test"):
        questions = [row["question"] for row in splits[held_out]]
        assert not train & set(questions)
        assert len(set(questions)) == len(questions)
        assert {row["family"] for row in splits[held_out]} == set(FAMILIES)


def test_answers_are_right():
    for row in generate(0, {"train": 400, "validation": 0, "test": 0})["train"]:
        q, a = row["question"], row["answer"]
        if m := re.fullmatch(r"What is (\d+) (plus|minus) (\d+)\?", q):
            x, op, y = int(m[1]), m[2], int(m[3])
            assert int(a) == (x + y if op == "plus" else x - y)
        elif m := re.fullmatch(r"Which is (larger|smaller), (\d+) or (\d+)\?", q):
            pair = (int(m[2]), int(m[3]))
            assert int(a) == (max(pair) if m[1] == "larger" else min(pair))
        elif m := re.fullmatch(r"How many times does (\w+) appear in: ([\w ]+)\?", q):
            assert int(a) == m[2].split().count(m[1])
        else:
            facts = dict(re.findall(r"(\w+) went to the (\w+)\.", q))
            asked = re.search(r"Where is (\w+)\?", q)[1]
            assert a == facts[asked]


def test_write_splits_writes_jsonl(tmp_path):
    write_splits(tmp_path, seed=1, sizes={"train": 20, "validation": 5, "test": 5})
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and set(rows[0]) == {"question", "answer", "family"}
