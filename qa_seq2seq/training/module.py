"""The LightningModule: a plain ``Seq2Seq`` network and everything about training it.

It sets the network up for training (initializer, then warm start, then freezing: each step
sees the result of the one before), and owns the optimizer and scheduler, the loss, the
validation metrics (loss, perplexity, exact match by actually decoding the validation
questions), what is logged, and what is stored in checkpoints beside the weights.
Logged: ``train/loss``, ``train/grad_norm``, ``val/loss``, ``val/ppl``, ``val/exact_match``,
with copy attention ``val/copy_switch`` (the mean probability of generating rather than copying
over the validation answers' tokens, teacher-forced), a
table of validation questions with predicted and gold answers (TensorBoard text), and for models
with attention, images of where the first validation answers looked (``val/attention/<i>``).

A non-finite loss or gradient (one check, on the gradient norm) stops the run naming the step
and batch (``nonfinite=error``), or skips that update (``nonfinite=skip``); either way no
non-finite update reaches the weights, so no checkpoint can hold them. Under fp16 mixed precision
an overflowing gradient with a finite loss is the loss scaler's business (it skips the step and
lowers its scale): such steps are counted (``train/amp_overflow_steps``), and the run stops only
if the scale collapses below 1.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchmetrics import MeanMetric

from qa_seq2seq.compatibility import fused_kernel_devices
from qa_seq2seq.data.batching import Batch
from qa_seq2seq.data.tokenizer import BOS_ID, PAD_ID, Tokenizer
from qa_seq2seq.decoding.checkpoint import PAYLOAD_KEY
from qa_seq2seq.decoding.hypotheses import with_texts
from qa_seq2seq.decoding.metrics import exact_match
from qa_seq2seq.errors import ConfigError, NonFiniteError
from qa_seq2seq.network.initializers import Initializer
from qa_seq2seq.network.model import Seq2Seq
from qa_seq2seq.network.rnn import Recurrent
from qa_seq2seq.network.scopes import freeze_, select
from qa_seq2seq.training.warm_start import WarmStart

log = logging.getLogger(__name__)


def set_up(net: Seq2Seq, init: Initializer | None = None, init_from: WarmStart | None = None,
           freeze: Sequence[str] = (), compile: bool = False) -> Seq2Seq:
    """Prepare ``net`` for training, in place: ``init``, then ``init_from``, then ``freeze``;
    ``compile`` runs the step of every recurrent layer's loop path (custom cells, recurrent
    dropout, one-step decoding on CPU) through ``torch.compile``; the first batches pay for it."""
    if init is not None:
        init(net)
    if init_from is not None:
        init_from(net)
    freeze_(net, freeze)
    for module in net.modules():
        if isinstance(module, Recurrent):
            module.compiled = compile
    return net


class Seq2SeqModule(L.LightningModule):
    """The LightningModule: the network's training set-up, teacher-forced loss, validation by search.

    Args:
        net: the network (architecture only).
        init, init_from, freeze, compile: its training set-up, applied by :func:`set_up`.
        tokenizer: to turn decoded ids into text for exact match and samples.
        optimizer: ``_partial_`` optimizer, called with the trainable parameters only.
        no_decay: globs of parameters the optimizer's weight decay spares (their own param group
            with ``weight_decay=0``), e.g. ``["*embedding*"]``; ``optimizer.no_decay`` in config.
        decay_from_step: the optimizer step from which the weight decay applies (before it, AdamW
            is Adam); ``optimizer.decay_from_step`` in config.
        scheduler: optional ``_partial_`` of a ``qa_seq2seq.training.schedules`` function, called with the
            optimizer and the number of optimizer steps; returns Lightning's scheduler dict.
        teacher_forcing: probability of feeding gold tokens at a training step (scheduled
            sampling; ``qa_seq2seq.training.schedules.TeacherForcing``); None: always (the fused path).
        search: ``_partial_`` search function used for ``val/exact_match`` (``decode=`` group).
        label_smoothing: for the training loss (validation loss is plain cross-entropy).
        nonfinite: ``error`` or ``skip`` when the loss or gradient norm is NaN/inf.
        payload: stored in every checkpoint under ``qa_seq2seq`` (network config, data config,
            format); the tokenizer bytes are added here.
        text_samples: validation questions shown in TensorBoard each validation.
        attention_maps: validation answers whose attention is drawn in TensorBoard.
    """

    def __init__(self, net: Seq2Seq, tokenizer: Tokenizer, optimizer: Callable,
                 search: Callable, no_decay: Sequence[str] = (), decay_from_step: int = 0,
                 init: Initializer | None = None,
                 init_from: WarmStart | None = None, freeze: Sequence[str] = (),
                 scheduler: Callable | None = None,
                 label_smoothing: float = 0.0, payload: dict[str, Any] | None = None,
                 text_samples: int = 8, attention_maps: int = 4, nonfinite: str = "error",
                 teacher_forcing: Callable[[int], float] | None = None, compile: bool = False):
        super().__init__()
        if nonfinite not in ("error", "skip"):
            raise ConfigError(f"nonfinite={nonfinite!r}: use 'error' or 'skip'")
        self.nonfinite, self.skipped_updates, self.amp_overflow_steps = nonfinite, 0, 0
        # The batch being trained: index, training rows, loss.
        self._batch: tuple[int, Tensor, Tensor] = (-1, torch.empty(0), torch.zeros(()))
        self.net, self.tokenizer = set_up(net, init, init_from, freeze, compile), tokenizer
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # Resolved once, here: a pattern that matches nothing is refused before the Trainer starts.
        self._no_decay = {id(p) for p in select(self.net, no_decay, "optimizer.no_decay").values()}
        self.decay_from_step = decay_from_step
        self.search, self.label_smoothing = search, label_smoothing
        self.teacher_forcing = teacher_forcing
        # Questions and answers are shown and scored as written, not in the model's order.
        data = (payload or {}).get("data", {})
        self.reverse_source = bool(data.get("reverse_source"))
        self.reverse_target = bool(data.get("reverse_target"))
        self.payload = {**(payload or {}), "tokenizer": tokenizer.model_proto}
        self.text_samples, self.attention_maps = text_samples, attention_maps
        self.val_loss, self.val_exact_match = MeanMetric(), MeanMetric()
        self.val_copy_switch = MeanMetric()
        self._samples: list[tuple[str, str, str]] = []

    def forward(self, batch: Batch, teacher_forcing: float = 1.0) -> Tensor:
        return self.net(batch.src, batch.src_lengths, batch.tgt_in,
                        teacher_forcing=teacher_forcing)  # (B, T, V)

    def model_step(self, batch: Batch, label_smoothing: float = 0.0,
                   teacher_forcing: float = 1.0) -> Tensor:
        """Mean cross-entropy per answer token (padding ignored)."""
        return answer_loss(self(batch, teacher_forcing), batch.tgt_out, label_smoothing)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        p = self.teacher_forcing(self.global_step) if self.teacher_forcing else 1.0
        loss = self.model_step(batch, self.label_smoothing, p)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.src.size(0))
        if self.teacher_forcing is not None and self.teacher_forcing.decay != "none":
            self.log("train/teacher_forcing", p, batch_size=batch.src.size(0))
        # No host sync here: a NaN/inf loss makes the gradient norm non-finite, and that single
        # check (configure_gradient_clipping) reports it with these rows.
        self._batch = (batch_idx, batch.index, loss.detach())
        return loss

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        """Weight decay off before ``decay_from_step``: a function of the step, so a resumed run
        decays exactly as an uninterrupted one."""
        if self.decay_from_step:
            for group in self.optimizers().param_groups:
                group["weight_decay"] = (group["scheduled_weight_decay"]
                                         if self.global_step >= self.decay_from_step else 0.0)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer,
                                    gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Norm clipping, logging and the non-finite check from one gradient-norm computation."""
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if not torch.isfinite(norm):
            scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            if scaler is not None and torch.isfinite(self._batch[2]):
                self._amp_overflow(scaler)
                return
            for p in params:  # the optimizer skips parameters without gradients
                p.grad = None
            self._nonfinite(f"gradient norm {norm.item()}")
            return
        if self.trainer.global_step % self.trainer.log_every_n_steps == 0:
            self.log("train/grad_norm", norm)
        if gradient_clip_val and gradient_clip_algorithm in (None, "norm"):
            torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, norm)
        elif gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _amp_overflow(self, scaler: torch.amp.GradScaler) -> None:
        """An fp16 overflow: ``scaler.step`` skips this update and ``scaler.update`` lowers the
        scale. Counted; only a scale that would fall below 1 stops the run."""
        self.amp_overflow_steps += 1
        self.log("train/amp_overflow_steps", float(self.amp_overflow_steps))
        scale = scaler.get_scale() * scaler.get_backoff_factor()
        if scale < 1:
            raise NonFiniteError(
                f"fp16 loss scale collapsed to {scale:g} at step {self.global_step} after "
                f"{self.amp_overflow_steps} overflowing steps: the gradients overflow fp16 even "
                "unscaled; use trainer.precision=bf16-mixed or 32-true, or lower optimizer.lr")

    def _nonfinite(self, what: str) -> None:
        batch_idx, rows, _ = self._batch
        message = (f"non-finite {what} at step {self.global_step}, epoch {self.current_epoch}, "
                   f"batch {batch_idx} (rows {rows[:8].tolist()} of the training split)")
        if self.nonfinite == "error":
            raise NonFiniteError(message + ": lower optimizer.lr, check the data, or set "
                                     "nonfinite=skip to skip such updates")
        self.skipped_updates += 1
        log.warning("%s: update skipped (%d so far)", message, self.skipped_updates)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        real = batch.tgt_out != PAD_ID  # (B, T)
        read = self.net.read(batch.src, batch.src_lengths, batch.tgt_in)
        self.val_loss.update(answer_loss(read.logits, batch.tgt_out), weight=int(real.sum()))
        if read.generate is not None:
            self.val_copy_switch.update(read.generate[real])
        hypotheses = self.search(self.net, batch.src, batch.src_lengths)
        predictions = [with_texts(h[:1], self.tokenizer, self.reverse_target)[0].text
                       for h in hypotheses]
        # Padding and <eos> decode to nothing, so whole padded rows can be reversed.
        golds = self.tokenizer.decode([t[::-1] for t in batch.tgt_out.tolist()]
                                      if self.reverse_target else batch.tgt_out.tolist())
        self.val_exact_match.update(torch.tensor([exact_match(p, g)
                                                  for p, g in zip(predictions, golds)]))
        if len(self._samples) < self.text_samples:
            sources = batch.src.tolist()
            questions = self.tokenizer.decode([s[::-1] for s in sources] if self.reverse_source
                                              else sources)
            self._samples += list(zip(questions, predictions, golds))[: self.text_samples]
        if batch_idx == 0 and (tensorboard := self._tensorboard()) is not None:
            self._log_attention(tensorboard, batch, [h[0].tokens for h in hypotheses])

    def _log_attention(self, tensorboard: Any, batch: Batch, answers: list[list[int]]) -> None:
        """Images of the attention of the first answers: a row per answer token (and <eos>), a
        column per question token as the encoder read it; white is weight 1."""
        if self.net.decoder.attention is None:
            return
        for i, answer in enumerate(answers[: self.attention_maps]):
            length = batch.src_lengths[i : i + 1]
            tgt_in = torch.tensor([[BOS_ID, *answer]], device=batch.src.device)
            weights = self.net.attention_weights(batch.src[i : i + 1, : int(length)], length,
                                                 tgt_in)[0]  # (T, S)
            image = weights.repeat_interleave(8, 0).repeat_interleave(8, 1)  # 8x8 px a cell
            tensorboard.add_image(f"val/attention/{i}", image, self.global_step, dataformats="HW")

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        # The metrics are already reduced over processes; sync_dist only states it to Lightning.
        self.log_dict({"val/loss": loss, "val/ppl": torch.exp(loss.clamp(max=50)),
                       "val/exact_match": self.val_exact_match.compute()}, prog_bar=True,
                      sync_dist=True)
        if self.net.decoder.copy is not None:
            self.log("val/copy_switch", self.val_copy_switch.compute(), sync_dist=True)
        for metric in (self.val_loss, self.val_exact_match, self.val_copy_switch):
            metric.reset()
        if (tensorboard := self._tensorboard()) is not None and self._samples:
            rows = "\n".join(f"| {q} | {p} | {g} | {'✓' if exact_match(p, g) else '✗'} |"
                             for q, p, g in self._samples[: self.text_samples])
            table = "| question | predicted | gold | |\n|---|---|---|---|\n" + rows
            tensorboard.add_text("val/samples", table, self.global_step)
        self._samples = []

    def _tensorboard(self) -> Any:
        """The TensorBoard writer among the loggers (text and images go there), or None."""
        return next((lg.experiment for lg in self.loggers if isinstance(lg, TensorBoardLogger)),
                    None)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self._param_groups())
        check_fused(optimizer)
        for group in optimizer.param_groups:  # what on_train_batch_start switches on
            group["scheduled_weight_decay"] = group.get("weight_decay", 0.0)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(
            optimizer, total_steps=self.trainer.estimated_stepping_batches)}

    def _param_groups(self) -> list[dict[str, Any]]:
        """The trainable parameters: those ``no_decay`` names in a group without weight decay.

        Decoupled weight decay shrinks every weight at every step, while an embedding row learns
        only on the steps whose batch holds its token: the rows of rare words fade.
        """
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        groups = ({"params": [p for p in trainable if id(p) not in self._no_decay]},
                  {"params": [p for p in trainable if id(p) in self._no_decay], "weight_decay": 0.0})
        return [group for group in groups if group["params"]]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[PAYLOAD_KEY] = self.payload
        # Lightning does not store RNG states; dropout after a resume should continue as is.
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": random.getstate()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if states := checkpoint.get("rng_states"):
            torch.set_rng_state(states["torch"])
            random.setstate(states["python"])


def answer_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy per answer token: logits (B, T, V), tgt_out (B, T) padded."""
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID,
                           label_smoothing=label_smoothing)


def check_fused(optimizer: torch.optim.Optimizer) -> None:
    """Refuse ``optimizer.fused=true`` where torch has no fused kernel for the parameters (an
    accelerator without one): torch finds out only at the first step, deep in the training loop.
    Without torch's list of devices (see compatibility), torch's own check is left."""
    if (supported := fused_kernel_devices()) is None:
        return
    for group in optimizer.param_groups:
        for p in group["params"] if group.get("fused") else ():
            if p.device.type not in supported or not p.is_floating_point():
                raise ConfigError(
                    f"optimizer.fused=true: torch has no fused {type(optimizer).__name__} for "
                    f"{p.dtype} parameters on {p.device.type} (it has for {', '.join(supported)}); "
                    "set optimizer.fused=null")
