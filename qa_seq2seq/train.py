"""Training entry point.

    python -m qa_seq2seq.train +experiment=toy_lstm model/net/cell=gru trainer.max_epochs=5
    python -m qa_seq2seq.train -m model/net/cell=lstm,gru          # one run directory per choice
    python -m qa_seq2seq.train +experiment=toy_lstm resume=auto  # continue the newest toy_lstm run

``train(cfg)`` is the whole job (tests call it directly); ``main`` only adds Hydra and turns
user errors into one clear message. A run directory (``outputs/<run_name>/<timestamp>/``) holds
the resolved config (``.hydra/``), the tokenizer (``tokenizer.model``), checkpoints
(``checkpoints/best.ckpt``, ``last.ckpt``), TensorBoard logs (``tensorboard/``) and ``train.log``:
enough to evaluate, decode or resume with nothing else.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO
from omegaconf import DictConfig, OmegaConf

from qa_seq2seq import __version__
from qa_seq2seq.compatibility import cpu_has_bf16_units
from qa_seq2seq.configs import CONF_DIR, hydra_command
from qa_seq2seq.data.datamodule import QADataModule
from qa_seq2seq.data.tokenizer import UNK_ID, Tokenizer
from qa_seq2seq.decoding.checkpoint import make_payload, read_checkpoint
from qa_seq2seq.errors import ConfigError, user_error
from qa_seq2seq.reporting import entry_point
from qa_seq2seq.training.callbacks import DataFiles, GracefulStop, Stopped
from qa_seq2seq.training.module import Seq2SeqModule
from qa_seq2seq.training.ranges import check_ranges
from qa_seq2seq.training.resume import (
    DATA_CHANGED,
    Finished,
    check_data_files,
    check_not_finished,
    check_unchanged,
    find_run,
    hydra_run_dir,
)
from qa_seq2seq.training.saving import AtomicCheckpointIO

log = logging.getLogger(__name__)
# Cached like Hydra's own ${now:}: every read in this process gives the same directory
# (Lightning's DDP launcher reads it again to start the other processes).
OmegaConf.register_new_resolver("qa_run_dir", hydra_run_dir, use_cache=True, replace=True)


def make_loggers(config: DictConfig | None) -> list[Logger]:
    """``logger=`` as a list: each entry of the config (``{tensorboard: {...}, csv: {...}}``)."""
    loggers = []
    for name, entry in (config or {}).items():
        if not entry:
            continue
        try:
            loggers.append(instantiate(entry))
        except InstantiationException as e:
            if isinstance(e.__cause__, ImportError):  # ModuleNotFoundError too
                raise ConfigError(f"logger={name} needs a package that is not installed "
                                  f"({e.__cause__}): pip install -e '.[{name}]', or choose "
                                  "logger=tensorboard|csv") from None
            raise
    return loggers


def check_search(search: Any, net: torch.nn.Module) -> None:
    """Run the configured search once on a one-token question, so bad decode options fail now."""
    net.eval()
    try:
        search(net, torch.tensor([[UNK_ID]]), torch.tensor([1]))
    finally:
        net.train()


def auto_precision(accelerator: str) -> str:
    """``trainer.precision=auto``: ``bf16-mixed`` where the run trains on a CPU with bfloat16
    matrix units (AMX or AVX-512 BF16), else ``32-true``: there bf16-mixed makes a step faster
    and learns about as much per step; on a GPU a model this small is bound by kernel launches,
    not arithmetic; on CPUs without those units bfloat16 is emulated."""
    return "bf16-mixed" if on_cpu(accelerator) and cpu_has_bf16_units() else "32-true"


def on_cpu(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` trains on the CPU."""
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()
                                    and not torch.backends.mps.is_available())


def check_precision(trainer_cfg: DictConfig) -> None:
    """Refuse fp16 mixed precision on a CPU: Lightning would train in bf16 instead, while the
    config and logs say 16-mixed."""
    if str(trainer_cfg.get("precision")) in ("16-mixed", "16") and \
            on_cpu(str(trainer_cfg.get("accelerator", "auto"))):
        raise ConfigError(f"trainer.precision={trainer_cfg.precision} on the CPU: Lightning's fp16 "
                          "mixed precision is for GPUs (on a CPU it would train in bf16 and log "
                          "16-mixed): use trainer.precision=bf16-mixed, 32-true or auto")


def make_trainer(trainer_cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """Lightning's Trainer from ``trainer_cfg`` (``check_precision`` passed); ``precision=auto``
    is resolved in the config itself, so the logged hyperparameters say what ran."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if trainer_cfg.get("precision") == "auto":
        trainer_cfg.precision = auto_precision(accelerator)
        log.info("trainer.precision=auto: %s", trainer_cfg.precision)
    # Lightning's model summary only sizes the weights (kept in fp32): nothing to warn about.
    warnings.filterwarnings("ignore", "Precision .* is not supported by the model summary")
    # Checkpoints are written atomically (qa_seq2seq.training.saving) unless trainer.plugins brings its
    # own CheckpointIO; the other plugins stay as configured.
    plugins = list(instantiate(trainer_cfg.get("plugins")) or [])
    if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        plugins.append(AtomicCheckpointIO())
    return instantiate(trainer_cfg, plugins=plugins, **kwargs)


def optimizer_factory(cfg: DictConfig) -> tuple[Callable, dict[str, Any]]:
    """The ``optimizer`` group: torch's optimizer (a partial), and the ``Seq2SeqModule`` options
    that are ours, not the optimizer's: ``no_decay`` globs (their parameters go in a group
    without weight decay) and ``decay_from_step``."""
    options = OmegaConf.to_container(cfg, resolve=True)
    ours = {"no_decay": options.pop("no_decay", None) or [],
            "decay_from_step": options.pop("decay_from_step", None) or 0}
    for key, off in (("no_decay", "[]"), ("decay_from_step", "0")):
        if ours[key] and not options.get("weight_decay"):
            raise ConfigError(f"optimizer.{key}={ours[key]} acts on the weight decay, and "
                              f"{options['_target_']} has none (optimizer.weight_decay="
                              f"{options.get('weight_decay', 0)}): set optimizer.{key}={off}, or "
                              f"use optimizer=adamw")
    return instantiate(options), ours


def check_config(cfg: DictConfig) -> tuple[Callable, dict[str, Any]]:
    """Every check the config alone allows, before the data and tokenizer take their time;
    returns the optimizer factory and our optimizer options (see :func:`optimizer_factory`)."""
    if missing := sorted(OmegaConf.missing_keys(cfg) - {"model.net.vocab_size"}):  # the tokenizer's
        raise ConfigError(f"{', '.join(missing)}: required, with no default (???); set "
                          f"{missing[0]}=...")
    check_ranges(cfg)
    check_precision(cfg.trainer)
    optimizer, optimizer_options = optimizer_factory(cfg.optimizer)
    if 0 < (max_steps := cfg.trainer.get("max_steps", -1)) <= optimizer_options["decay_from_step"]:
        raise ConfigError(f"optimizer.decay_from_step={optimizer_options['decay_from_step']}: the "
                          f"run ends at trainer.max_steps={max_steps}, before any decay; set it "
                          f"below {max_steps}")
    if (schedule := cfg.get("scheduler")) and "_target_" not in schedule:
        keys = ", ".join(f"scheduler.{k}" for k in schedule)
        raise ConfigError(f"{keys} set, but scheduler=none chooses no schedule: choose one "
                          "(scheduler=warmup|linear|cosine|plateau), or drop "
                          + " ".join(f"~scheduler.{k}" for k in schedule))
    if (on_change := cfg.get("resume_data_changed", "error")) not in DATA_CHANGED:
        raise ConfigError(f"resume_data_changed={on_change!r}: use {' or '.join(DATA_CHANGED)}")
    if (separator := cfg.model.net.get("match_separator")) and \
            separator not in (cfg.data.get("source_template") or ""):
        raise ConfigError(f"model.net.match_separator={separator!r} splits the source "
                          f"into question and passage, and data.source_template does not "
                          f"contain it: e.g. data.source_template='{{question}} "
                          f"{separator} {{context}}'")
    return optimizer, optimizer_options


class Resume(NamedTuple):
    """Where a resumed run continues: its last checkpoint, read once."""
    checkpoint: Path  # the run's checkpoints/last.ckpt
    raw: dict[str, Any]  # the whole checkpoint, read once


def resume_point(cfg: DictConfig) -> Resume | None:
    """The checkpoint ``resume=`` continues, checked (the config unchanged, the run not finished);
    sets ``cfg.output_dir`` to its run. None without ``resume``."""
    if not cfg.get("resume"):
        return None
    run_dir = find_run(cfg.resume, cfg.run_name)
    check_unchanged(cfg, run_dir)
    cfg.output_dir = str(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    resume = Resume(checkpoint, read_checkpoint(checkpoint).raw)
    check_not_finished(resume.raw, cfg.trainer)
    log.info("resuming %s from step %d", run_dir, resume.raw.get("global_step", 0))
    return resume


def prepare_data(cfg: DictConfig, output_dir: Path, resume: Resume | None
                 ) -> tuple[QADataModule, DataFiles]:
    """The data module with its tokenizer (trained now, or the resumed run's own: ids must not
    change), and the data files' fingerprints that every checkpoint keeps."""
    datamodule: QADataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    data_files = DataFiles(datamodule.files)
    if resume is not None:
        check_data_files(resume.raw, data_files, cfg.get("resume_data_changed") == "accept")
    tokenizer_path = output_dir / "tokenizer.model"
    if tokenizer_path.exists():
        datamodule.use_tokenizer(Tokenizer.load(tokenizer_path))
    elif resume is not None:
        raise ConfigError(f"resume: {tokenizer_path} is missing; the run cannot continue")
    else:
        datamodule.fit_tokenizer().save(tokenizer_path)
    return datamodule, data_files


def build_module(cfg: DictConfig, tokenizer: Tokenizer, optimizer: Callable,
                 optimizer_options: dict[str, Any]) -> Seq2SeqModule:
    """The LightningModule ``cfg.model`` describes, for ``tokenizer``'s vocabulary, with the
    checkpoint payload and the configured search (run once here, so bad options fail now)."""
    cfg.model.net.vocab_size = tokenizer.vocab_size
    search = instantiate(cfg.decode)
    payload = make_payload(OmegaConf.to_container(cfg.model.net, resolve=True), tokenizer,
                           data=OmegaConf.to_container(cfg.data, resolve=True),
                           decode=OmegaConf.to_container(cfg.decode, resolve=True))
    module: Seq2SeqModule = instantiate(cfg.model, _convert_="all")(
        tokenizer=tokenizer, optimizer=optimizer, **optimizer_options,
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        search=search, label_smoothing=cfg.label_smoothing,
        teacher_forcing=instantiate(cfg.scheduled_sampling), nonfinite=cfg.nonfinite,
        payload=payload)
    module.net.bind_vocabulary(tokenizer.id_to_piece(list(range(tokenizer.vocab_size))),
                               cfg.data.get("reverse_source", False))
    check_search(search, module.net)
    trainable = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    log.info("model: %d trainable / %d parameters", trainable,
             sum(p.numel() for p in module.net.parameters()))
    return module


def make_callbacks(cfg: DictConfig, data_files: DataFiles, loggers: list[Logger]) -> list[L.Callback]:
    """``callbacks=`` and the data fingerprints, GracefulStop last: a signal's checkpoint must
    hold what every other callback did at that step (the weight average among them), as
    Lightning runs its ModelCheckpoints last for the same reason."""
    callbacks = {name: instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if c}
    if not loggers and (needs := [n for n, c in callbacks.items() if isinstance(c, LearningRateMonitor)]):
        raise ConfigError(f"callbacks.{needs[0]} logs to a logger, and there is none (~logger "
                          f"or logger: null): keep one, or drop it with ~callbacks.{needs[0]}")
    return sorted([data_files, *callbacks.values()], key=lambda c: isinstance(c, GracefulStop))


def log_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The resolved config to each logger; TensorBoard's HPARAMS tab shows it beside the metric."""
    hparams = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, {"val/exact_match": 0.0})
        else:
            logger.log_hyperparams(hparams)


def fit(trainer: L.Trainer, module: Seq2SeqModule, datamodule: QADataModule,
        resume: Resume | None) -> None:
    """``trainer.fit``, with Lightning's refusals of trainer options it can judge only once the
    data's size is known (an integer val_check_interval longer than an epoch, a fractional one
    on streamed data) as config errors; a resume that trained no step is :class:`Finished`."""
    try:
        trainer.fit(module, datamodule=datamodule, weights_only=True,
                    ckpt_path=resume.checkpoint if resume is not None else None)
    except (MisconfigurationException, ValueError) as e:
        if user_error(e) or not isinstance(e, MisconfigurationException) and \
                "val_check_interval" not in str(e):
            raise
        raise ConfigError(f"trainer: {' '.join(str(e).split())}") from None
    if resume is not None and trainer.global_step == (start := resume.raw.get("global_step", 0)):
        raise Finished(f"the run had already finished at step {start} "
                       f"(trainer.max_epochs={trainer.max_epochs}, trainer.max_steps="
                       f"{trainer.max_steps}); raise them to train further")


def final_metrics(trainer: L.Trainer, output_dir: Path) -> dict[str, Any]:
    """The last logged metrics, the step, and the best checkpoint with its score; written to
    ``metrics.json`` (read by scripts/summarize_runs.py)."""
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["global_step"] = trainer.global_step
    if trainer.checkpoint_callback is not None:
        metrics["best_checkpoint"] = trainer.checkpoint_callback.best_model_path
        metrics["best_score"] = float(trainer.checkpoint_callback.best_model_score or 0.0)
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train ``cfg``; returns the final logged metrics (and ``best_checkpoint``)."""
    optimizer, optimizer_options = check_config(cfg)
    resume = resume_point(cfg)
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)
    datamodule, data_files = prepare_data(cfg, output_dir, resume)
    module = build_module(cfg, datamodule.tokenizer, optimizer, optimizer_options)
    loggers = make_loggers(cfg.get("logger"))
    trainer = make_trainer(cfg.trainer, callbacks=make_callbacks(cfg, data_files, loggers),
                           logger=loggers or False, default_root_dir=str(output_dir))
    log_config(loggers, cfg)
    fit(trainer, module, datamodule, resume)
    # Whatever ended the fit (done, early stopping, max_time): a checkpoint to resume from.
    trainer.save_checkpoint(output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    metrics = final_metrics(trainer, output_dir)
    log.info("done: %s", metrics)
    log.info("run directory: %s", output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@entry_point
def main(cfg: DictConfig) -> float | None:
    """``python -m qa_seq2seq.train``: Hydra composes ``conf/train.yaml``; returns val/exact_match."""
    try:
        metrics = train(cfg)
    except Finished as done:  # a resume that did nothing leaves nothing behind
        _discard_resumed_dir()
        log.info("nothing to do: %s", done)
        return None
    except Stopped as stop:
        log.warning("%s", stop)
        sys.exit(128 + stop.signum)  # the shell's convention for a process ended by a signal
    except Exception as e:  # a refused resume too (entry_point reports the error)
        if user_error(e) is not None:
            _discard_resumed_dir()
        raise
    return metrics.get("val/exact_match")  # what a Hydra sweeper would optimise


def _discard_resumed_dir() -> None:
    """Remove this invocation's ``<run>/resumed-<time>/`` (Hydra made it before ``train`` ran)."""
    here = Path(HydraConfig.get().runtime.output_dir)
    if here.name.startswith("resumed-"):
        shutil.rmtree(here, ignore_errors=True)


USAGE = """Train a sequence-to-sequence QA model.

  python -m qa_seq2seq.train +experiment=NAME [group=option ...] [key=value ...]
  python -m qa_seq2seq.train +experiment=toy_lstm model/net/cell=gru model.net.hidden_size=128
  python -m qa_seq2seq.train +experiment=passage_qa --help     # this help, for those choices

Every key of every option, with its default and meaning: conf/README.md."""


@entry_point
def print_help(overrides: list[str]) -> None:
    """``--help``: the groups and their options, then the config composed for ``overrides`` with
    each key's meaning (its comment in conf/) beside it."""
    from omegaconf import open_dict

    from qa_seq2seq.configs import compose
    from qa_seq2seq.training.config_docs import annotate, groups, key_comments

    cfg = compose(overrides, return_hydra_config=True)
    choices = {group: option for group, option in cfg.hydra.runtime.choices.items()
               if not group.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    lines = [USAGE, "", "== Groups (group=option; chosen in brackets) =="]
    for group in groups():
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        lines.append(f"{group}: " + ", ".join(f"[{o}]" if o == choices.get(group) else o
                                            for o in options))
    lines += ["", "== Config, for the groups chosen ==",
              annotate(OmegaConf.to_yaml(cfg), key_comments(choices))]
    print("\n".join(lines))


def cli() -> None:
    """``qa-seq2seq-train`` and ``python -m qa_seq2seq.train``: ``--help`` and ``--version`` here,
    the rest is Hydra's command line (overrides, ``-m``, ``--config-dir``)."""
    hydra_command("train", __version__)
    if {"--help", "-h"} & set(sys.argv[1:]):
        print_help([a for a in sys.argv[1:]  # flags (--help, -m) are not overrides
                    if a not in ("--help", "-h", "-m", "--multirun")])
        sys.exit(0)
    main()


if __name__ == "__main__":
    cli()
