"""Data-parallel training with 2 CPU processes (gloo) through Lightning's DDP strategy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.data.batching import pad
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.decoding.answerer_base import QuestionReader
from qa_seq2seq.decoding.checkpoint import load_model
from tests.conftest import toy_data_overrides

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".pytest-data" / "toy"


@pytest.mark.train
@pytest.mark.cli
def test_two_processes_shard_the_data_agree_on_weights_and_write_one_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "qa_seq2seq.train", "+experiment=smoke", "trainer=ddp",
         "trainer.accelerator=cpu", "trainer.devices=2", "run_name=ddp",
         "trainer.precision=32-true",  # the loss is recomputed below in fp32, to 1e-5
         "trainer.max_epochs=2", "trainer.limit_val_batches=1.0", *toy_data_overrides(DATA),
         "+callbacks.record._target_=tests.helpers.RecordRank",
         f"+callbacks.record.folder={tmp_path / 'ranks'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert abs(ranks[0]["checksum"] - ranks[1]["checksum"]) < 1e-6  # gradients all-reduced
    per_epoch = [r["rows"][: len(r["rows"]) // 2] for r in ranks]  # the first epoch's rows
    assert not set(per_epoch[0]) & set(per_epoch[1])  # disjoint shards
    assert len(set(per_epoch[0]) | set(per_epoch[1])) == 256  # together: every training row
    (run,) = (tmp_path / "outputs" / "ddp").iterdir()
    assert load_model(run).model.vocab_size > 0
    assert (run / "train_ddp_process_1.log").is_file()  # rank 1 logged, rank 0 wrote the run

    # Validation is sharded too, and its metrics are reduced over both processes: each rank
    # logged the loss of the whole validation split, as one process computes it on the weights
    # of the last validation (= last.ckpt: no training after it).
    assert ranks[0]["val_loss"] == ranks[1]["val_loss"] and len(ranks[0]["val_loss"]) == 2
    whole_split = validation_loss(load_model(run / "checkpoints" / "last.ckpt"),
                                  DATA / "validation.jsonl")
    assert ranks[0]["val_loss"][-1] == pytest.approx(whole_split, rel=1e-5)


@torch.no_grad()
def validation_loss(loaded, path: Path) -> float:
    """Mean cross-entropy per answer token over every row of ``path``, in one process."""
    model, tokenizer, checkpoint = loaded
    reader = QuestionReader(checkpoint.payload["data"], tokenizer)
    rows = [json.loads(line) for line in path.open()]
    src, lengths = pad([reader.source(r["question"])[1] for r in rows], PAD_ID)
    answers = tokenizer.encode([r["answer"] for r in rows])
    tgt_in, _ = pad([[BOS_ID, *a] for a in answers], PAD_ID)
    tgt_out, _ = pad([[*a, EOS_ID] for a in answers], PAD_ID)
    logits = model(src, lengths, tgt_in)
    return float(F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID))


@pytest.mark.slow  # two processes start for each (~15 s): the refusal itself is one line
@pytest.mark.train
@pytest.mark.cli
@pytest.mark.parametrize("option, message", [
    ("data.streaming=true", "data.streaming with several processes is not supported yet"),
    ("data.max_tokens=2000", "data.max_tokens gives each process a different number of batches"),
])
def test_data_options_that_cannot_be_sharded_are_refused(tmp_path, option, message):
    result = subprocess.run(
        [sys.executable, "-m", "qa_seq2seq.train", "+experiment=smoke", "trainer=ddp",
         "trainer.accelerator=cpu", "trainer.devices=2", option, *toy_data_overrides(DATA)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
