"""Training entry point.

    python -m qa_seq2seq.train +experiment=toy_lstm model/cell=gru trainer.max_epochs=5
    python -m qa_seq2seq.train -m model/cell=lstm,gru          # one run directory per choice

``train(cfg)`` is the whole job (tests call it directly); ``main`` only adds Hydra. A run directory
(``outputs/<run_name>/<timestamp>/``) holds the resolved config (``.hydra/``), the tokenizer
(``tokenizer.model``), checkpoints (``checkpoints/best.ckpt``, ``last.ckpt``), TensorBoard logs
(``tensorboard/``) and ``train.log``: enough to evaluate or decode with nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qa_seq2seq.checkpoint import FORMAT_VERSION
from qa_seq2seq.data import QADataModule
from qa_seq2seq.module import Seq2SeqModule
from qa_seq2seq.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def build_network(model_cfg: DictConfig, vocab_size: int) -> tuple[Any, dict[str, Any]]:
    """The network, and the config that rebuilds it for inference (no init, no warm start)."""
    config = OmegaConf.to_container(model_cfg, resolve=True)
    config["vocab_size"] = vocab_size
    net = instantiate(config, _convert_="all")
    inference_config = {**config, "init": None, "init_from": None}
    return net, inference_config


def train(cfg: DictConfig) -> dict[str, float]:
    """Train ``cfg``; returns the final logged metrics (and ``best_checkpoint``)."""
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)

    datamodule: QADataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    tokenizer_path = output_dir / "tokenizer.model"
    if tokenizer_path.exists():  # a resumed run keeps its tokenizer: ids must not change
        datamodule.use_tokenizer(Tokenizer.load(tokenizer_path))
    else:
        datamodule.fit_tokenizer().save(tokenizer_path)
    tokenizer = datamodule.tokenizer

    net, inference_config = build_network(cfg.model, tokenizer.vocab_size)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    log.info("model: %d trainable / %d parameters", trainable,
             sum(p.numel() for p in net.parameters()))
    payload = {"format": FORMAT_VERSION, "model": inference_config,
               "data": OmegaConf.to_container(cfg.data, resolve=True)}
    module = Seq2SeqModule(
        net, tokenizer,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        search=instantiate(cfg.decode),
        label_smoothing=cfg.label_smoothing,
        payload=payload,
    )
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger,
                                     default_root_dir=str(output_dir))
    trainer.fit(module, datamodule=datamodule, weights_only=True)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.checkpoint_callback is not None:
        metrics["best_checkpoint"] = trainer.checkpoint_callback.best_model_path
    log.info("done: %s", {k: v for k, v in metrics.items()})
    log.info("run directory: %s", output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/exact_match")  # what a Hydra sweeper would optimise


if __name__ == "__main__":
    main()
