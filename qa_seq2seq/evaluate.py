"""Evaluation entry point: decode a split with a trained checkpoint and score the answers.

    python -m qa_seq2seq.evaluate                  # newest run, test split, its validation search
    python -m qa_seq2seq.evaluate ckpt_path=outputs/toy_lstm/2026-... split=validation decode=beam

The search is the one the checkpoint was validated with (stored in it) unless ``decode=`` names
another; it runs through ``qa_seq2seq.decoding.answerer.Answerer``, as the CLI and the Python API do.

Writes ``predictions.jsonl`` (question, gold, prediction, score, correct, family) and
``metrics.json`` into ``eval-<split>-<decode>/`` beside the checkpoint, prints a table (with what
the wrong answers are, overall and per family: a cut-off or extended gold answer, another span
of the source, or nothing in it; and exact match by the gold answer's length in pieces), and logs
the metrics to the run's TensorBoard under ``eval/<split>/<decode>/``. With another file for the
split (``+data.test_file=data/arith/extrapolation.jsonl``) ``<split>`` becomes
``<split>-<file stem>`` (``test-extrapolation``), so one file's results never replace another's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from qa_seq2seq import __version__
from qa_seq2seq.configs import CONF_DIR, hydra_command
from qa_seq2seq.decoding.answerer import Answerer
from qa_seq2seq.decoding.checkpoint import load_model
from qa_seq2seq.decoding.metrics import corpus_metrics, error_analysis, exact_match
from qa_seq2seq.decoding.search_options import decode_choice
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.registry import DATA, build, check
from qa_seq2seq.reporting import entry_point

log = logging.getLogger(__name__)
# What evaluate reads: the keys of conf/evaluate.yaml and its decode group.
KEYS = set(OmegaConf.load(CONF_DIR / "evaluate.yaml")) \
    - {"defaults", "hydra"} | {"decode"}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split``; returns the metrics (also written to disk)."""
    if unknown := sorted(set(cfg) - KEYS):
        raise ConfigError(f"evaluate does not read {', '.join(unknown)}: its keys are "
                          f"{', '.join(sorted(KEYS))} (training options such as +experiment= "
                          "belong to python -m qa_seq2seq.train; the model comes from ckpt_path)")
    loaded = load_model(cfg.ckpt_path, cfg.device)
    ckpt = loaded.checkpoint
    chosen = OmegaConf.to_container(cfg.decode, resolve=True) if cfg.get("decode") else None
    decode, options = decode_choice(chosen, "decode") if chosen else (None, {})
    answerer = Answerer(loaded, decode, batch_size=cfg.batch_size, device=cfg.device, **options)
    decode_name = answerer.decode
    stored, where = ckpt.payload.get("data"), f"{ckpt.path} [data config]"
    check(stored, DATA, where)  # before it is merged: OmegaConf would resolve what it holds
    overrides = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else {}
    data_cfg = OmegaConf.to_container(OmegaConf.merge(stored, overrides))
    datamodule = build(data_cfg, DATA, where + (" with your data.* overrides" if overrides else ""))
    datamodule.prepare_data()
    datamodule.use_tokenizer(loaded.tokenizer)
    # Checked and tokenised exactly as in training (read row by row: it may be a stream).
    rows = list(datamodule.split(cfg.split).select_columns(["src_ids", "tgt_ids", "source",
                                                            "target", "family"]))
    ids, questions = [r["src_ids"] for r in rows], [r["source"] for r in rows]
    golds = [r["target"] for r in rows]
    families = [r["family"] for r in rows] if datamodule.fields.family_field else None
    log.info("decoding %d %s questions with %s %s from %s", len(ids), cfg.split, decode_name,
             answerer.options, ckpt.path)
    best = [h[0] for h in answerer.answer_ids(ids)]
    predictions = [h.text for h in best]
    metrics = corpus_metrics(predictions, golds, families)
    metrics |= error_analysis(predictions, golds, questions, [len(r["tgt_ids"]) for r in rows],
                              families)

    name = evaluated_name(cfg.split, ckpt.payload["data"], data_cfg)
    out_dir = ckpt.path.parent / f"eval-{name}-{decode_name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for i, (question, gold, prediction, hyp) in enumerate(zip(questions, golds, predictions,
                                                                   best)):
            row = {"question": question, "gold": gold, "prediction": prediction,
                   "score": hyp.score, "correct": bool(exact_match(prediction, gold))}
            if families is not None:
                row["family"] = families[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"checkpoint": str(ckpt.path), "split": cfg.split,
               "file": data_cfg.get(f"{cfg.split}_file"), "decode": decode_name,
               "metrics": metrics}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    _log_to_tensorboard(ckpt.path, ckpt.raw.get("global_step", 0),
                        f"eval/{name}/{decode_name}", metrics)
    print(format_table(metrics, title=f"{name} ({decode_name}) — {ckpt.path}"))
    print(f"wrote {out_dir}/predictions.jsonl and metrics.json")
    return metrics


def evaluated_name(split: str, stored: dict, data_cfg: dict) -> str:
    """``split``, or ``split-<file stem>`` when the data overrides name another file for it."""
    file = data_cfg.get(f"{split}_file")
    if file is None or file == stored.get(f"{split}_file"):
        return split
    return f"{split}-{Path(file).stem}"


def format_table(metrics: dict[str, float], title: str) -> str:
    """``metrics`` as an aligned two-column table under ``title``."""
    width = max(len(k) for k in metrics)
    lines = [title, "-" * len(title)]
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)


def _log_to_tensorboard(ckpt_path: Path, step: int, prefix: str, metrics: dict) -> None:
    run_dir = ckpt_path.parent.parent
    if not (run_dir / "tensorboard").is_dir():
        return
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir / "tensorboard")) as writer:
        for key, value in metrics.items():
            writer.add_scalar(f"{prefix}/{key}", value, step)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
@entry_point
def main(cfg: DictConfig) -> None:
    """``python -m qa_seq2seq.evaluate``: Hydra composes ``conf/evaluate.yaml``."""
    evaluate(cfg)


def cli() -> None:
    """``qa-seq2seq-evaluate`` and ``python -m qa_seq2seq.evaluate``."""
    hydra_command("evaluate", __version__)
    main()


if __name__ == "__main__":
    cli()
