"""The data module's settings: a flat ``data=`` config sorted into four groups, each checking its
own values, and an unknown key refused with the nearest one that exists."""

import dataclasses
import inspect

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from qa_seq2seq.data.factory import make_datamodule
from qa_seq2seq.data.options import GROUPS, Batching, Fields, Limits, Sources
from qa_seq2seq.errors import ConfigError, unknown_argument
from tests.conftest import compose_train


def test_every_data_key_belongs_to_one_group_and_the_factory_lists_them_all(tmp_path):
    names = [f.name for cls in GROUPS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))
    assert list(inspect.signature(make_datamodule).parameters) == ["streaming", "tokenizer", *names]
    data = compose_train([], tmp_path).data
    assert set(data) - {"_target_", "streaming", "tokenizer"} <= set(names)


def test_the_flat_keys_arrive_in_their_groups(tmp_path):
    module = make_datamodule(train_file=str(tmp_path / "t.jsonl"), family_field="family",
                             max_answer_length=9, batch_size=5, seed=3, on_bad_row="skip")
    assert module.sources == Sources(train_file=str(tmp_path / "t.jsonl"))
    assert module.fields == Fields(family_field="family")
    assert module.limits == Limits(max_answer_length=9, on_bad_row="skip")
    assert module.batching == Batching(batch_size=5, seed=3)
    assert module.files == {"train": str(tmp_path / "t.jsonl"), "validation": None, "test": None}


@pytest.mark.parametrize("make,message", [
    (lambda: Sources(), "give either data.path .* or data.train_file .*, not neither"),
    (lambda: Sources(train_file="a.jsonl", path="x"), "not both"),
    (lambda: Sources(train_file="notes.txt"), r"data.train_file=notes.txt: not found; give a .jsonl"),
    (lambda: Limits(on_bad_row="ignore"), "data.on_bad_row='ignore': use 'error' or 'skip'"),
    (lambda: Limits(overlength="cut"), "data.overlength='cut': use 'truncate', 'drop' or 'error'"),
    (lambda: Batching(subword_sampling=0), r"data.subword_sampling=0: give an alpha in \(0, 1\]"),
])
def test_each_group_refuses_its_bad_values_by_key(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_an_unknown_data_key_is_named_with_the_nearest(tmp_path):
    data = compose_train(["+data.batchsize=3"], tmp_path).data
    with pytest.raises(InstantiationException) as raised:
        instantiate(data)
    error = unknown_argument(raised.value)
    assert error is not None and "takes no 'batchsize'; the nearest: " in str(error)
    assert "batch_size" in str(error).split("the nearest: ")[1]
