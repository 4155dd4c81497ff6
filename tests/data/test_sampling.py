"""Subword sampling: the same text, other segmentations, one per word in source and answer, drawn
the same way again for the same batch; only where the tokenizer can sample."""

import pytest
import torch

from qa_seq2seq.data.fields import SourceBuilder
from qa_seq2seq.data.passages import generate
from qa_seq2seq.data.sampling import SampledCollate
from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.errors import ConfigError

ROWS = generate(0, {"train": 400}, people={"train": 40}, places={"train": 20})["train"]
SOURCES = [f"{r['question']} <sep> {r['context']}" for r in ROWS]


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train(SOURCES + [r["answer"] for r in ROWS], vocab_size=400,
                           model_type="bpe", user_defined_symbols=["<sep>"])


def batch_rows(tokenizer, builder, start=0, size=16):
    rows = []
    for i in range(start, start + size):
        src, tgt = tokenizer.encode([SOURCES[i], ROWS[i]["answer"]])
        rows.append({"source": SOURCES[i], "target": ROWS[i]["answer"], "index": i,
                     "src_ids": builder.orient(src[:builder.max_length]), "tgt_ids": tgt})
    return rows


def contains(ids, part):
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


def test_sampled_segmentations_spell_the_same_text_and_names_alike(tokenizer):
    collate = SampledCollate(tokenizer, SourceBuilder(max_length=512), 0.3, max_answer_length=16)
    changed = 0
    for row, source in zip(ROWS[:100], SOURCES):
        src, tgt = collate.encode([source, row["answer"]])
        assert tokenizer.decode([src, tgt]) == tokenizer.decode(tokenizer.encode([source,
                                                                                   row["answer"]]))
        changed += src != tokenizer.encode([source])[0]
        if row["family"] in ("place", "name", "comparison"):  # the answer is a name
            assert contains(src, tgt), row  # copyable: pieces as in the passage
    assert changed > 90  # nearly every row is segmented another way


def test_a_batch_draws_the_same_segmentations_again_and_others_for_other_rows(tokenizer):
    builder = SourceBuilder(max_length=512)
    first = SampledCollate(tokenizer, builder, 0.3, 16, seed=1)(batch_rows(tokenizer, builder))
    again = SampledCollate(tokenizer, builder, 0.3, 16, seed=1)(batch_rows(tokenizer, builder))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    other_seed = SampledCollate(tokenizer, builder, 0.3, 16, seed=2)(batch_rows(tokenizer, builder))
    assert not torch.equal(first.src, other_seed.src)


def test_rows_over_the_limits_keep_their_stored_ids_and_orientation_is_kept(tokenizer):
    builder = SourceBuilder(max_length=40, reverse_source=True)
    rows = batch_rows(tokenizer, builder)
    batch = SampledCollate(tokenizer, builder, 0.3, 16, seed=1)(rows)
    for row, src, length in zip(rows, batch.src, batch.src_lengths):
        best = tokenizer.encode([row["source"]])[0]
        if len(best) > 40:  # cut by the builder: sampled pieces would be longer still
            assert src[:length].tolist() == row["src_ids"]
        else:
            sampled = src[:length].tolist()[::-1]  # read last token first
            assert tokenizer.decode([sampled]) == tokenizer.decode([best])


def test_only_tokenizers_that_can_sample_are_accepted(tmp_path):
    from qa_seq2seq.data.factory import make_datamodule

    with pytest.raises(ConfigError, match=r"data.subword_sampling=1.5: give an alpha in \(0, 1\]"):
        make_datamodule(train_file=str(tmp_path / "t.jsonl"), subword_sampling=1.5)
    with pytest.raises(ConfigError, match="set data.streaming=false"):
        make_datamodule(train_file=str(tmp_path / "t.jsonl"), subword_sampling=0.1, streaming=True)
    module = make_datamodule(train_file=str(tmp_path / "t.jsonl"), subword_sampling=0.1)
    module.use_tokenizer(Tokenizer.train(SOURCES[:50], vocab_size=60, model_type="char"))
    with pytest.raises(ConfigError, match="data.tokenizer.model_type=bpe|unigram"):
        module._sampled_collate()
