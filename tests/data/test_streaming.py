"""data.streaming: the same rows, tokens and training loop, read while iterating."""

import json

import pytest

from qa_seq2seq.data.datamodule import QADataModule
from qa_seq2seq.data.factory import make_datamodule
from qa_seq2seq.data.streaming import StreamingQADataModule
from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.errors import ConfigError, DataError
from qa_seq2seq.train import train
from tests.conftest import compose_evaluate, compose_train, toy_data_overrides

GOOD = [{"question": f"What is {i} plus 1?", "answer": str(i + 1)} for i in range(300)]


def module(tmp_path, rows, **kwargs):
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return make_datamodule(train_file=str(tmp_path / "train.jsonl"),
                           validation_file=str(tmp_path / "valid.jsonl"),
                           cache_dir=str(tmp_path / "cache"), batch_size=16, sort_window=4,
                           tokenizer=lambda texts: Tokenizer.train(texts, vocab_size=40), **kwargs)


def batches(loader):
    return [b.index.tolist() for b in loader]


def test_stream_batches_cover_every_row_once_sorted_within_windows(tmp_path):
    dm = module(tmp_path, GOOD, streaming=True, shuffle_buffer=64)
    dm.fit_tokenizer()
    (tmp_path / "m").mkdir()
    in_memory = module(tmp_path / "m", GOOD)
    in_memory.use_tokenizer(dm.tokenizer)
    loader = dm.loader("train", shuffle=True)
    first = list(loader)
    seen = sorted(i for b in first for i in b.index.tolist())
    assert seen == list(range(300))
    spreads = []
    for batch in first:  # each batch a slice of a length-sorted window
        assert batch.src_lengths.tolist() == sorted(batch.src_lengths.tolist())
        spreads.append(int(batch.src_lengths.max() - batch.src_lengths.min()))
    assert sum(spreads) / len(spreads) <= 2
    # The same tokens as the in-memory path.
    rows = {r["index"]: r["src_ids"] for r in dm.split("train")}
    assert rows == dict(enumerate(in_memory.split("train")["src_ids"]))
    assert batches(loader) == batches(loader)  # same epoch, same order
    order = [i for b in first for i in b.index.tolist()]
    assert order != sorted(order)  # shuffled, not the file's order
    reseeded = module(tmp_path, GOOD, streaming=True, seed=7)
    reseeded.use_tokenizer(dm.tokenizer)
    assert batches(reseeded.loader("train", shuffle=True)) != batches(loader)  # seed decides


def test_a_bad_row_in_a_stream_is_named_or_skipped(tmp_path):
    rows = GOOD[:50] + [{"question": "q", "answer": ""}] + GOOD[50:]
    dm = module(tmp_path, rows, streaming=True)
    with pytest.raises(DataError, match="row 51 of the stream: field 'answer' is empty"):
        dm.fit_tokenizer()
    skipping = module(tmp_path, rows, streaming=True, on_bad_row="skip")
    skipping.fit_tokenizer()
    assert sum(1 for _ in skipping.split("train")) == 300


def test_training_and_evaluation_on_a_stream(tmp_path, smoke_run):

    from qa_seq2seq.evaluate import evaluate

    data_dir = smoke_run[0].parent / "data"
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(data_dir),
                         "data.streaming=true", "data.tokenizer_sample=500"], tmp_path / "run")
    metrics = train(cfg)
    assert metrics["global_step"] > 0 and "val/exact_match" in metrics
    result = evaluate(compose_evaluate(tmp_path / "run"))
    assert result["count"] == 1000


def test_streaming_only_keys_are_refused_in_memory(tmp_path):
    with pytest.raises(ConfigError, match="data.shuffle_buffer and data.tokenizer_sample apply to "
                                          "streaming only: set data.streaming=true"):
        module(tmp_path, GOOD, shuffle_buffer=64)
    with pytest.raises(ConfigError, match="apply to streaming only"):
        module(tmp_path, GOOD, tokenizer_sample=500)
    assert type(module(tmp_path, GOOD, shuffle_buffer=10_000)) is QADataModule  # an old default
    streaming = module(tmp_path, GOOD, streaming=True, shuffle_buffer=64)
    assert isinstance(streaming, StreamingQADataModule) and streaming.shuffle_buffer == 64
    assert streaming.tokenizer_sample == 100_000


def test_a_data_config_stored_before_the_factory_builds_the_module_it_asked_for(tmp_path):
    from qa_seq2seq.registry import DATA, build

    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    stored = {"_target_": "qa_seq2seq.data.datamodule.QADataModule",
              "train_file": str(tmp_path / "train.jsonl"),
              "validation_file": str(tmp_path / "valid.jsonl")}
    assert type(build(stored, DATA, "old run")) is QADataModule
    assert type(build({**stored, "streaming": True}, DATA, "old run")) is StreamingQADataModule
