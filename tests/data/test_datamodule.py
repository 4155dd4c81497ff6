"""Data loading: bad rows are named by file:line (or skipped and counted), batches are right."""

import json

import pytest

from qa_seq2seq.data.batching import collate
from qa_seq2seq.data.factory import make_datamodule
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from qa_seq2seq.errors import DataError

GOOD = [{"question": f"What is {i} plus 1?", "answer": str(i + 1)} for i in range(40)]


def write(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n"
                              for x in lines))
    return str(path)


def module(tmp_path, train_lines=None, **kwargs):
    if train_lines is not None:
        write(tmp_path / "train.jsonl", train_lines)
        write(tmp_path / "valid.jsonl", GOOD[:4])
    return make_datamodule(train_file=str(tmp_path / "train.jsonl"),
                           validation_file=str(tmp_path / "valid.jsonl"),
                           cache_dir=str(tmp_path / "cache"),
                           tokenizer=lambda texts: Tokenizer.train(texts, vocab_size=40), **kwargs)


@pytest.mark.parametrize("bad,message", [
    (b'{"question": "What is 1 plus 1?", "answer": "2"', "not valid JSON"),
    (b'{"question": "\xff\xfe", "answer": "2"}', "not valid UTF-8"),
    (b'["a list"]', "a JSON list, not an object"),
    ({"question": "What?"}, "field 'answer' is missing"),
    ({"question": "What?", "answer": ["7"]}, "field 'answer' is list, not a string"),
    ({"question": "   ", "answer": "x"}, "field 'question' is empty"),
])
def test_a_bad_row_stops_with_file_and_line(tmp_path, bad, message):
    dm = module(tmp_path, GOOD[:10] + [b""] + [bad] + GOOD[10:])  # a blank line before it
    with pytest.raises(DataError, match=f"train.jsonl:12: {message}"):
        dm.prepared("train")


def test_bad_rows_are_skipped_and_counted_on_request(tmp_path, caplog):
    lines = GOOD[:10] + [b"{not json", {"question": "q", "answer": ""}] + GOOD[10:]
    dm = module(tmp_path, lines, on_bad_row="skip")
    rows = dm.prepared("train")
    assert len(rows) == 40 and dm.stats["train"]["bad_rows"] == 2
    assert "skipped 2 bad rows" in caplog.text and "train.jsonl:11" in caplog.text
    only_fields = module(tmp_path, GOOD[:5] + [{"question": "q", "answer": " "}], on_bad_row="skip")
    assert len(only_fields.prepared("train")) == 5


def test_missing_files_and_fields_are_named(tmp_path):
    dm = make_datamodule(train_file=str(tmp_path / "nope.jsonl"),
                         validation_file=str(tmp_path / "nope2.jsonl"))
    with pytest.raises(DataError, match="nope.jsonl"):
        dm.prepare_data()
    dm = module(tmp_path, [{"q": "x", "a": "y"}])
    with pytest.raises(DataError, match="field 'question' is missing"):
        dm.prepared("train")


def test_rows_with_other_field_names_are_told_the_keys_that_name_them(tmp_path):
    """Each message names the config key to set, not data.on_bad_row=skip (which would drop
    every row); following it leads to the next key, then to a data set that loads."""
    rows = [{"q": f"What is {i} plus 1?", "a": str(i + 1)} for i in range(20)]
    write(tmp_path / "valid.jsonl", rows[:4])
    with pytest.raises(DataError) as error:
        module(tmp_path, rows).prepared("train")
    assert "field 'question' is missing (the row's fields: 'q', 'a'; data.question_field names " \
           "the field)" in str(error.value) and "on_bad_row" not in str(error.value)
    with pytest.raises(DataError, match="field 'answer' is missing .* data.answer_field names"):
        module(tmp_path, question_field="q").prepared("train")
    assert len(module(tmp_path, question_field="q", answer_field="a").prepared("train")) == 20


@pytest.mark.parametrize("name", ["nonexistent", "nonexistent.xyz", "nonexistent.csv"])
def test_a_missing_file_of_any_extension_is_not_found(tmp_path, name):
    from qa_seq2seq.errors import UserError

    missing = str(tmp_path / name)
    with pytest.raises(UserError, match=r"not found") as error:
        make_datamodule(train_file=missing, validation_file=str(tmp_path / "v.jsonl")).prepare_data()
    assert missing in str(error.value) and "unknown file type" not in str(error.value)
    (tmp_path / "notes.txt").write_text("q")  # present, of a type no loader reads
    with pytest.raises(UserError, match=r"data.train_file=.*notes.txt: unknown file type; give "
                                        r"a .jsonl, .json, .csv or .parquet file"):
        make_datamodule(train_file=str(tmp_path / "notes.txt"),
                        validation_file=str(tmp_path / "v.jsonl"))


@pytest.mark.parametrize("policy", ["truncate", "drop", "error"])
def test_overlength_rows_are_counted_and_handled(tmp_path, policy, caplog):
    long = {"question": "What is " + "very " * 50 + "long?", "answer": "x"}
    dm = module(tmp_path, GOOD + [long], max_question_length=40, overlength=policy)
    tokenizer = dm.fit_tokenizer()
    if policy == "error":
        with pytest.raises(DataError, match="exceed the length limits"):
            dm.split("train")
        return
    ds = dm.split("train")
    assert dm.stats["train"]["overlength"] == 1
    assert len(ds) == (41 if policy == "truncate" else 40)
    assert max(len(ids) for ids in ds["src_ids"]) <= 40
    warning = next(r.getMessage() for r in caplog.records if "length limits" in r.getMessage())
    assert "1 rows (2%) over the length limits (40, 64) were" in warning
    if policy == "truncate":  # and what would have fitted every row
        longest = len(tokenizer.encode([long["question"]])[0])
        answers = tokenizer.encode([row["answer"] for row in GOOD + [long]])
        assert warning.endswith(f"data.max_question_length={longest} data.max_answer_length="
                                f"{max(map(len, answers))} would fit every row")


def test_tokenised_split_is_cached_by_datasets(tmp_path):
    dm = module(tmp_path, GOOD)
    tokenizer = dm.fit_tokenizer()
    first = dm.split("train")
    again = module(tmp_path)  # the same files: a second run
    again.use_tokenizer(tokenizer)
    second = again.split("train")
    assert second.cache_files and second.cache_files[0] == first.cache_files[0]


def test_collate_builds_teacher_forcing_pairs():
    batch = collate([{"src_ids": [5, 6, 7], "tgt_ids": [8], "index": 3},
                     {"src_ids": [9], "tgt_ids": [10, 11], "index": 0}])
    assert batch.src.tolist() == [[5, 6, 7], [9, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, PAD_ID], [BOS_ID, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, EOS_ID, PAD_ID], [10, 11, EOS_ID]]
    assert batch.index.tolist() == [3, 0]


def test_rows_of_a_source_without_lines_are_named_by_number(tmp_path):
    import datasets

    folder = tmp_path / "hub_like"
    folder.mkdir()
    rows = GOOD[:5] + [{"question": "What?", "answer": ""}] + GOOD[5:10]
    datasets.Dataset.from_list(rows).to_parquet(str(folder / "train.parquet"))
    dm = make_datamodule(path=str(folder), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="split 'train', row 6: field 'answer' is empty"):
        dm.prepared("train")


def test_reverse_source_reverses_the_ids_the_encoder_reads_after_truncation(tmp_path):
    forward = module(tmp_path, GOOD, max_question_length=5)
    tokenizer = forward.fit_tokenizer()
    backward = module(tmp_path, reverse_source=True, max_question_length=5)
    backward.use_tokenizer(tokenizer)
    ids = list(forward.split("train")["src_ids"])
    reversed_ids = list(backward.split("train")["src_ids"])
    full = tokenizer.encode([GOOD[0]["question"]])[0]
    assert len(full) > 5 and ids[0] == full[:5]  # cut first (the question's start is kept) ...
    assert reversed_ids == [row[::-1] for row in ids]  # ... then read last to first
    assert list(backward.split("train")["tgt_ids"]) == list(forward.split("train")["tgt_ids"])
    answers_last_first = module(tmp_path, reverse_target=True)
    answers_last_first.use_tokenizer(tokenizer)
    assert list(answers_last_first.split("train")["tgt_ids"]) == [
        tokenizer.encode([r["answer"]])[0][::-1] for r in GOOD]


def test_numeric_columns_are_read_as_the_text_written(tmp_path):
    import datasets

    (tmp_path / "train.csv").write_text("question,answer\nWhat is 3 + 4?,7\nPad 7 to 3 digits.,007\n"
                                        "Halve 3.,1.50\nWhat is 1 + 1?,\n")
    dm = make_datamodule(train_file=str(tmp_path / "train.csv"), on_bad_row="skip",
                         cache_dir=str(tmp_path / "cache"))
    assert list(dm.prepared("train")["target"]) == ["7", "007", "1.50"]  # the empty cell: skipped
    rows = [{"question": 12, "answer": 144}, {"question": "What is 0.5 + 1?", "answer": 1.5}]
    datasets.Dataset.from_list(rows[1:]).to_parquet(str(tmp_path / "numbers.parquet"))
    (tmp_path / "numbers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for file in ("numbers.parquet", "numbers.jsonl"):
        dm = make_datamodule(train_file=str(tmp_path / file), cache_dir=str(tmp_path / "cache"))
        prepared = dm.prepared("train")
        assert list(prepared["target"])[-1] == "1.5"
    assert list(prepared["source"]) == ["12", "What is 0.5 + 1?"]
