"""Resuming a run: which run to continue, what may change, and what must not have.

``resume=auto`` continues the newest run of ``run_name`` (``resume=PATH``: a run directory or a
checkpoint in one) from its ``checkpoints/last.ckpt``, in its own directory: model, optimizer,
scheduler, step and epoch counters, early-stopping and best-checkpoint state, the RNG states, the
tokenizer, and the position in the epoch's (seeded) batch order all continue where they were.

A resumed run keeps its configuration. Only the keys in :data:`MAY_CHANGE` may differ (raise
``trainer.max_steps`` to train longer: it is the total, not the remainder); any other difference is
refused with a list of what differs, never silently ignored.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from qa_seq2seq.compatibility import current
from qa_seq2seq.decoding.runs import DEFAULT_OUTPUTS, runs_by_age
from qa_seq2seq.errors import ConfigError, DataError
from qa_seq2seq.training.callbacks import DataFiles

log = logging.getLogger(__name__)
MAY_CHANGE = ("resume", "resume_data_changed", "output_dir", "trainer.max_steps",
              "trainer.max_epochs", "trainer.enable_progress_bar", "trainer.log_every_n_steps")
DATA_CHANGED = ("error", "accept")  # resume_data_changed


def find_run(resume: str, run_name: str, outputs: Path = DEFAULT_OUTPUTS) -> Path:
    """The run directory to continue: ``auto`` (newest of ``run_name``), a run dir, or a checkpoint."""
    if resume == "auto":
        if not (runs := runs_by_age(outputs / run_name, "*/checkpoints/last.ckpt")):
            raise ConfigError(f"resume=auto: no run of run_name={run_name!r} with "
                              f"checkpoints/last.ckpt under {outputs}/; train first, or pass "
                              "resume=<run directory>")
        return runs[-1]
    path = Path(resume)
    run = path.parent.parent if path.is_file() else path
    if not (run / "checkpoints" / "last.ckpt").is_file():
        raise ConfigError(f"resume={resume}: {run} has no checkpoints/last.ckpt to resume from")
    return run


def hydra_run_dir(run_name: str, resume: str | None) -> str:
    """Hydra's directory for this invocation: a new run, or ``resumed-<time>`` inside the old one."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if resume is not None:
        try:
            return str(find_run(resume, run_name) / f"resumed-{stamp}")
        except ConfigError:
            pass  # train() raises it again, with the message
    return str(DEFAULT_OUTPUTS / run_name / stamp)


def check_unchanged(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse a resume whose config differs from the run's own beyond :data:`MAY_CHANGE`."""
    stored_path = run_dir / ".hydra" / "config.yaml"
    if not stored_path.is_file():
        raise ConfigError(f"resume: {stored_path} is missing, so the run's config is unknown")
    stored = _flatten(OmegaConf.to_container(OmegaConf.load(stored_path)))
    given = _flatten(OmegaConf.to_container(cfg))
    differ = sorted(k for k in stored.keys() | given.keys()
                    if current(stored.get(k)) != given.get(k)
                    and not k.startswith(MAY_CHANGE))
    if differ:
        shown = "\n".join(f"  {k}: run has {stored.get(k)!r}, given {given.get(k)!r}"
                          for k in differ[:20])
        raise ConfigError(
            f"resume: this config differs from the run's ({stored_path}):\n{shown}\n"
            f"A resumed run keeps its config; only {', '.join(MAY_CHANGE)} may change. Drop "
            f"these overrides, or start a new run from this one's weights with "
            f"model.init_from.checkpoint={run_dir}"
        )


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items()
                for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


class Finished(Exception):
    """Nothing to do: the run to resume already reached its limits."""


def check_not_finished(raw: dict[str, Any], trainer: DictConfig) -> None:
    """Raise :class:`Finished` when checkpoint ``raw`` is at or past ``trainer``'s limits."""
    step, epoch = raw.get("global_step", 0), raw.get("epoch", 0)
    max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs")
    if max_steps not in (None, -1) and step >= max_steps:
        reached = f"step {step}, trainer.max_steps={max_steps}"
    elif max_epochs not in (None, -1) and epoch >= max_epochs:
        reached = f"epoch {epoch}, trainer.max_epochs={max_epochs}"
    else:
        return
    raise Finished(f"the run is already at {reached}; raise the limit to train further")


def check_data_files(raw: dict[str, Any], current: DataFiles, accept: bool) -> None:
    """Refuse to resume checkpoint ``raw`` on data files that differ from those it was trained
    on, unless ``accept`` (``resume_data_changed=accept``); then say what that does."""
    stored = (raw.get("callbacks") or {}).get(current.state_key, {}).get("files", {})
    same = ("size", "sha256")
    changed = [(split, old, new) for split, old in stored.items()
               if not (new := current.files.get(split)) or any(new[k] != old[k] for k in same)]
    if not changed:
        return
    lines = "\n".join(
        f"  data.{split}_file={old['path']}: {old['size']:,} bytes (sha256 {old['sha256'][:12]}) "
        f"when trained; now " + (f"{new['size']:,} bytes (sha256 {new['sha256'][:12]})" if new
                                 else "missing") for split, old, new in changed)
    if not accept:
        raise DataError(
            f"resume: the data changed since step {raw.get('global_step', 0)} was saved:\n{lines}\n"
            "A resumed run continues the epoch's batch order from the file it was trained on. "
            "Restore the file, start a new run from this one's weights "
            "(model.init_from.checkpoint=<run>), or add resume_data_changed=accept to go on with "
            "the new file")
    log.warning("resume_data_changed=accept: the data changed since step %d was saved:\n%s\n"
                "Going on with the new file(s): the epoch in progress resumes at the batch it had "
                "reached, in the new file's order, so some of its rows are skipped or seen twice; "
                "later epochs read the new file whole, and the run no longer matches one never "
                "interrupted", raw.get("global_step", 0), lines)
