"""Data-parallel training with 2 CPU processes (gloo) through Lightning's DDP strategy."""

import json
import os
import subprocess
import sys
from pathlib import Path

from qa_seq2seq.checkpoint import load_model
from tests.conftest import toy_data_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_shard_the_data_agree_on_weights_and_write_one_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "qa_seq2seq.train", "+experiment=smoke", "trainer=ddp",
         "trainer.accelerator=cpu", "trainer.devices=2", "run_name=ddp",
         "trainer.max_epochs=2", *toy_data_overrides(ROOT / ".pytest-data" / "toy"),
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
