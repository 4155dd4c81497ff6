"""Each shim over another library's private API (qa_seq2seq/compatibility.py) still reaches it:
a torch, Lightning or Hydra upgrade that drops or changes one fails here, not as a fallback
nobody notices."""

import sys

import pytest
import torch

from qa_seq2seq import compatibility


def test_torch_lists_the_devices_it_has_fused_optimizer_kernels_for():
    devices = compatibility.fused_kernel_devices()
    assert devices is not None and "cpu" in devices and "cuda" in devices


def test_torch_can_say_whether_this_cpu_has_bf16_units():
    assert compatibility.cpu_has_bf16_units() in (True, False)


def test_lerp_all_is_torchs_fused_call_and_gives_lerps_result(monkeypatch):
    assert hasattr(torch, "_foreach_lerp_")
    starts, ends = [torch.zeros(3), torch.ones(2)], [torch.ones(3) * 4, torch.zeros(2)]
    compatibility.lerp_all_(starts, ends, 0.25)
    torch.testing.assert_close(starts, [torch.ones(3), torch.full((2,), 0.75)])
    monkeypatch.delattr(torch, "_foreach_lerp_")  # the fallback gives the same
    starts = [torch.zeros(3), torch.ones(2)]
    compatibility.lerp_all_(starts, ends, 0.25)
    torch.testing.assert_close(starts, [torch.ones(3), torch.full((2,), 0.75)])


@pytest.mark.train  # a three-step fit of one parameter
def test_lightning_counts_the_batches_processed_in_the_epoch(tmp_path):
    import lightning.pytorch as L

    seen = []

    class Count(L.Callback):
        def on_train_batch_end(self, trainer, *args):  # where a mid-epoch checkpoint is written
            seen.append(compatibility.batches_processed(trainer))

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, _):
            return (self.w - batch).pow(2).mean()

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.ones(3, 1), batch_size=1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, callbacks=[Count()])
    trainer.fit(Tiny())
    assert seen == [1, 2, 3]


def test_every_hydra_main_reports_through_the_wrapped_run_and_report(tmp_path, monkeypatch):
    import hydra
    import hydra._internal.utils as hydra_utils

    calls = []

    def recording(original):
        def run_and_report(func):
            calls.append(func)
            return original(func)
        return run_and_report

    monkeypatch.setattr(hydra_utils, "run_and_report", hydra_utils.run_and_report)  # restored after
    compatibility.wrap_hydra_reporting(recording)
    compatibility.wrap_hydra_reporting(recording)  # once: a second call changes nothing
    (tmp_path / "app.yaml").write_text("x: 1\n")

    @hydra.main(version_base=None, config_path=str(tmp_path), config_name="app")
    def app(cfg):
        return cfg.x

    monkeypatch.setattr(sys, "argv", ["app", "x=2", f"hydra.run.dir={tmp_path}/run"])
    monkeypatch.chdir(tmp_path)
    app()
    assert calls, "hydra.main no longer reports through hydra._internal.utils.run_and_report"
    assert len({id(f) for f in calls}) == len(calls), "wrapped twice"
