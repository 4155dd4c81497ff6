"""What keeps old files loading and what leans on other libraries' private APIs, in one place.

- :data:`MOVED`: the targets that stored configs (checkpoints, exports, run configs) may name
  under an old name, read as the name they have now, by the registry, the stored ``decode``
  config and resume's comparison of configs.
- One small shim per private API of torch, Lightning and Hydra. Each says what it falls back to
  when the library drops it; ``tests/test_compatibility.py`` fails when one is gone or changed, so
  an upgrade shows it at once instead of a fallback going unnoticed.

Imports no torch, Lightning or Hydra at module level: the torch-free runtime reads MOVED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The names configs stored before the package was split into layers (and, for the network,
# before the builder; for the callbacks, before they had their own module; for the data, before
# the factory chose between in-memory and streaming) give a target.
MOVED = {
    "lightning.pytorch.callbacks.ModelCheckpoint": "qa_seq2seq.training.callbacks.RunCheckpoint",
    "qa_seq2seq.arith_data.ensure_splits": "qa_seq2seq.data.arith.ensure_splits",
    "qa_seq2seq.attention.Attention": "qa_seq2seq.network.attention.Attention",
    "qa_seq2seq.averaging.EMA": "qa_seq2seq.training.averaging.EMA",
    "qa_seq2seq.builder.build_network": "qa_seq2seq.network.builder.build_network",
    "qa_seq2seq.data.QADataModule": "qa_seq2seq.data.factory.make_datamodule",
    "qa_seq2seq.data.datamodule.QADataModule": "qa_seq2seq.data.factory.make_datamodule",
    "qa_seq2seq.initializers.Initializer": "qa_seq2seq.network.initializers.Initializer",
    "qa_seq2seq.model.Seq2Seq": "qa_seq2seq.network.builder.build_network",
    "qa_seq2seq.module.Seq2SeqModule": "qa_seq2seq.training.module.Seq2SeqModule",
    "qa_seq2seq.passage_data.ensure_splits": "qa_seq2seq.data.passages.ensure_splits",
    "qa_seq2seq.resume.GracefulStop": "qa_seq2seq.training.callbacks.GracefulStop",
    "qa_seq2seq.resume.RunCheckpoint": "qa_seq2seq.training.callbacks.RunCheckpoint",
    "qa_seq2seq.rnn.GRU": "qa_seq2seq.network.rnn.GRU",
    "qa_seq2seq.rnn.LSTM": "qa_seq2seq.network.rnn.LSTM",
    "qa_seq2seq.rnn.LayerNormLSTM": "qa_seq2seq.network.rnn.LayerNormLSTM",
    "qa_seq2seq.rnn.PeepholeLSTM": "qa_seq2seq.network.rnn.PeepholeLSTM",
    "qa_seq2seq.rnn.RNN": "qa_seq2seq.network.rnn.RNN",
    "qa_seq2seq.schedules.TeacherForcing": "qa_seq2seq.training.schedules.TeacherForcing",
    "qa_seq2seq.schedules.plateau": "qa_seq2seq.training.schedules.plateau",
    "qa_seq2seq.schedules.warmup_decay": "qa_seq2seq.training.schedules.warmup_decay",
    "qa_seq2seq.search.beam_search": "qa_seq2seq.decoding.search.beam_search",
    "qa_seq2seq.search.greedy_search": "qa_seq2seq.decoding.search.greedy_search",
    "qa_seq2seq.search.sample": "qa_seq2seq.decoding.search.sample",
    "qa_seq2seq.sharing.Sharing": "qa_seq2seq.network.sharing.Sharing",
    "qa_seq2seq.tokenizer.Tokenizer.train": "qa_seq2seq.data.tokenizer.Tokenizer.train",
    "qa_seq2seq.toy_data.ensure_splits": "qa_seq2seq.data.toy.ensure_splits",
    "qa_seq2seq.training.resume.GracefulStop": "qa_seq2seq.training.callbacks.GracefulStop",
    "qa_seq2seq.training.resume.RunCheckpoint": "qa_seq2seq.training.callbacks.RunCheckpoint",
    "qa_seq2seq.warm_start.WarmStart": "qa_seq2seq.training.warm_start.WarmStart",
}


def current(name: Any) -> Any:
    """The target a stored ``_target_`` value names today (see MOVED); other values unchanged."""
    return MOVED.get(name, name) if isinstance(name, str) else name


def fused_kernel_devices() -> list[str] | None:
    """The device types torch has fused optimizer kernels for (torch's private helper); None
    without it, and then torch's own check at the first step is left."""
    from torch.utils import _foreach_utils

    devices = getattr(_foreach_utils, "_get_fused_kernels_supported_devices", None)
    return None if devices is None else list(devices())


def cpu_has_bf16_units() -> bool | None:
    """Whether this CPU has bfloat16 matrix units (AMX or AVX-512 BF16), from torch's private
    probes; None when torch has neither probe (then ``precision=auto`` picks fp32)."""
    import torch

    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(probe is None for probe in probes):
        return None
    return any(probe() for probe in probes if probe is not None)


def lerp_all_(starts: list[Any], ends: list[Any], weight: float) -> None:
    """In place, ``start <- start + weight * (end - start)`` for each pair: one fused call
    (``torch._foreach_lerp_``) where torch has it, else a loop of ``Tensor.lerp_``."""
    import torch

    if (fused := getattr(torch, "_foreach_lerp_", None)) is not None:
        fused(starts, ends, weight)
        return
    for start, end in zip(starts, ends):
        start.lerp_(end, weight)


def batches_processed(trainer: Any) -> int:
    """Training batches of the current epoch whose update is in the weights (Lightning's loop
    progress: "processed" counts a batch whose checkpoint is written in on_train_batch_end)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def wrap_hydra_reporting(wrap: Callable[[Callable], Callable]) -> None:
    """Replace Hydra's ``run_and_report`` (``hydra._internal.utils``, which every
    ``hydra.main`` calls around composing and running) with ``wrap(original)``, once."""
    import hydra._internal.utils as hydra_utils

    if getattr(hydra_utils.run_and_report, "wrapped_by_qa_seq2seq", False):
        return
    wrapped = wrap(hydra_utils.run_and_report)
    wrapped.wrapped_by_qa_seq2seq = True
    hydra_utils.run_and_report = wrapped
