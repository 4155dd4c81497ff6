"""Answer questions with an exported ONNX model: numpy and onnxruntime only, no torch.

    python -m qa_seq2seq.export --checkpoint outputs/toy_lstm/<run> --out exported/toy --format onnx
    qa-seq2seq-decode --model exported/toy

    from qa_seq2seq.deployment.runtime import OnnxAnswerer
    qa = OnnxAnswerer("exported/toy", decode="beam", beam_size=5)
    print(qa.answer(["What is 3 plus 4?"])[0].text)

The folder's ``encoder*.onnx`` and ``step.onnx`` (``qa_seq2seq.deployment.onnx_graphs``) are the network's
``encode`` and ``step``; the greedy and beam searches here are ``qa_seq2seq.decoding.search`` written in
numpy: the same options, the same stop rule and ranking (``qa_seq2seq.decoding.hypotheses``), the same
scores up to float rounding. Sampling stays with the torch model.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from qa_seq2seq.decoding.answering import Answering, QuestionReader
from qa_seq2seq.decoding.hypotheses import (
    Hypothesis,
    block_repeated_ngrams,
    check_beam_options,
    hypothesis,
    is_done,
    with_texts,
)
from qa_seq2seq.decoding.search_choice import searches_in
from qa_seq2seq.errors import CheckpointError, ConfigError

ONNX_FORMAT = "qa_seq2seq-onnx"
State = dict[str, np.ndarray]


def is_onnx_export(path: str | Path | None) -> bool:
    """Whether ``path`` is a folder written by ``export --format onnx``."""
    return path is not None and (Path(path) / "step.onnx").is_file()


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("decoding an ONNX export needs onnxruntime: pip install -e \".[export]\" "
                          "(or pip install onnxruntime)") from None
    return onnxruntime


class OnnxModel:
    """``encode`` / ``step`` / ``reorder_state`` of an exported network, on numpy arrays."""

    def __init__(self, folder: Path, graphs: dict[str, Any], threads: int = 0):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the cores)
        # Idle threads spinning between the many small step calls cost more than they save.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(file: Any):
            if not (isinstance(file, str) and file == Path(file).name and file.endswith(".onnx")):
                raise CheckpointError(f"{folder}/model.json names the graph {file!r}: an export's "
                                      "graphs are .onnx files inside its own folder")
            return ort.InferenceSession(str(folder / file), options,
                                        providers=["CPUExecutionProvider"])

        # "any": one encoder for every source length; else one per length bucket.
        self.encoders = {None if k == "any" else int(k): session(f)
                         for k, f in graphs["encoders"].items()}
        self.step_session = session(graphs["step"])
        self.names, self.carried = graphs["state"], graphs["carried"]
        self.batch_axes = graphs["batch_axes"]
        # Older exports traced attention with one memory row per state row.
        self.grouped_memory = graphs.get("grouped_memory", False)

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> State:
        """src (B, S) int64, src_lengths (B,) -> the decoder's state before ``<bos>``."""
        if None in self.encoders:
            encoder = self.encoders[None]
        else:  # a loop-cell encoder: pad to the smallest bucket that holds the batch
            fits = [size for size in self.encoders if size >= src.shape[1]]
            if not fits:
                raise ConfigError(f"a question of {src.shape[1]} tokens is longer than the "
                                  f"longest this export takes ({max(self.encoders)})")
            bucket = min(fits)
            src = np.pad(src, ((0, 0), (0, bucket - src.shape[1])), constant_values=PAD_ID)
            encoder = self.encoders[bucket]
        outputs = encoder.run(self.names, {"src": src, "src_lengths": src_lengths})
        return dict(zip(self.names, outputs))

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """tokens (B,) -> logits (B, V) and the next state."""
        out = self.step_session.run(None, {"tokens": tokens, **state})
        return out[0], {**state, **dict(zip(self.carried, out[1:]))}

    def reorder_state(self, state: State, order: np.ndarray) -> State:
        """Select/repeat batch rows: ``order`` (B',) indexes each tensor's batch axis."""
        return {name: np.take(x, order, axis=self.batch_axes[name]) for name, x in state.items()}


def _limits(src_lengths: np.ndarray, max_length: int, max_length_ratio: float | None) -> np.ndarray:
    """Per-question cap on answer tokens (B,)."""
    if max_length < 1:
        raise ConfigError(f"decode.max_length must be >= 1, got {max_length}")
    limits = np.full_like(src_lengths, max_length)
    if max_length_ratio is not None:
        relative = np.ceil(src_lengths.astype(np.float32) * np.float32(max_length_ratio))
        limits = np.minimum(limits, relative.astype(np.int64).clip(min=1))
    return limits


def _log_probs(model: OnnxModel, tokens: np.ndarray, state: State, t: int, min_length: int):
    """One step: log-probabilities (rows, V) with pad/bos (and early eos) blocked."""
    logits, state = model.step(tokens, state)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    log_probs[:, [PAD_ID, BOS_ID]] = -math.inf
    if t < min_length:
        log_probs[:, EOS_ID] = -math.inf
    return log_probs, state


def greedy_search(model: OnnxModel, src: np.ndarray, src_lengths: np.ndarray,
                  max_length: int = 64, max_length_ratio: float | None = None,
                  min_length: int = 0) -> list[list[Hypothesis]]:
    """The most likely token at every step (``qa_seq2seq.decoding.search.greedy_search``)."""
    batch = src.shape[0]
    limits = _limits(src_lengths, max_length, max_length_ratio)
    steps = int(limits.max())
    out_tokens = np.zeros((batch, steps), np.int64)
    out_log_probs = np.zeros((batch, steps), np.float32)
    lengths, finished = np.zeros(batch, np.int64), np.zeros(batch, bool)
    alive = np.arange(batch)  # question of each row
    tokens = np.full(batch, BOS_ID, np.int64)
    state = model.encode(src, src_lengths)
    for t in range(steps):
        log_probs, state = _log_probs(model, tokens, state, t, min_length)
        tokens = log_probs.argmax(-1)
        out_tokens[alive, t] = tokens
        out_log_probs[alive, t] = log_probs[np.arange(tokens.size), tokens]
        ended = tokens == EOS_ID
        done = ended | (t + 1 >= limits[alive])
        lengths[alive], finished[alive] = t + 1, ended
        if done.all():
            break
        if done.any():
            keep = np.flatnonzero(~done)
            alive, tokens = alive[keep], tokens[keep]
            state = model.reorder_state(state, keep)
    tokens_, log_probs_ = out_tokens.tolist(), out_log_probs.tolist()
    return [[hypothesis(tokens_[i][:n], log_probs_[i][:n], done, "none", 0.0)]
            for i, (n, done) in enumerate(zip(lengths.tolist(), finished.tolist()))]


def beam_search(model: OnnxModel, src: np.ndarray, src_lengths: np.ndarray, beam_size: int = 5,
                n_best: int = 1, max_length: int = 64, max_length_ratio: float | None = None,
                min_length: int = 0, length_penalty: str = "none", alpha: float = 0.6,
                no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """Beam search over batch x beam rows (``qa_seq2seq.decoding.search.beam_search``, step for step)."""
    check_beam_options(beam_size, n_best, length_penalty)
    batch, k = src.shape[0], beam_size
    limits = _limits(src_lengths, max_length, max_length_ratio)
    state = model.encode(src, src_lengths)
    # The attention memory stays one row per question (alive): the step graph serves each
    # question's k rows from it, so it is copied only when questions finish.
    memory = {name: state.pop(name) for name in list(state)
              if name.startswith("memory") and model.grouped_memory}
    state = model.reorder_state(state, np.repeat(np.arange(batch), k))
    alive = np.arange(batch)  # question of each block of k rows
    scores = np.full((batch, k), -np.inf, np.float32)
    scores[:, 0] = 0.0  # the first step expands one beam only
    history = np.zeros((batch * k, 0), np.int64)
    history_log_probs = np.zeros((batch * k, 0), np.float32)
    tokens = np.full(batch * k, BOS_ID, np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for t in range(int(limits.max())):
        log_probs, state = _log_probs(model, tokens, {**state, **memory}, t, min_length)
        state = {name: x for name, x in state.items() if name not in memory}
        vocab, questions = log_probs.shape[1], alive.size
        if no_repeat_ngram_size > 0:
            block_repeated_ngrams(log_probs, history, no_repeat_ngram_size)
        candidates = (scores[:, :, None] + log_probs.reshape(questions, k, vocab)).reshape(questions, -1)
        width = min(2 * k, candidates.shape[1])
        top_ids = np.argsort(-candidates, axis=1, kind="stable")[:, :width]  # (b, 2k) best first
        top_scores = np.take_along_axis(candidates, top_ids, 1)
        rows = top_ids // vocab + (np.arange(questions) * k)[:, None]
        top_tokens = top_ids % vocab
        top_log_probs = log_probs[rows, top_tokens]
        is_eos = (top_tokens == EOS_ID) & np.isfinite(top_scores)
        at_limit = t + 1 >= limits[alive]  # (b,)
        # The k best candidates that do not end, per question (at least k of the 2k do not).
        rank = np.broadcast_to(np.arange(width), top_ids.shape)
        keep = np.argsort(rank + is_eos * width, axis=1, kind="stable")[:, :k]  # (b, k)
        # Candidates that finish now: <eos> among the k best, or every kept one at the limit.
        ending = is_eos & (rank < k)
        kept = np.zeros_like(ending)
        np.put_along_axis(kept, keep, True, 1)
        ending |= kept & at_limit[:, None] & np.isfinite(top_scores)
        for q, c in np.argwhere(ending).tolist():
            row = rows[q, c]
            finished[alive[q]].append(hypothesis(
                history[row].tolist() + [int(top_tokens[q, c])],
                history_log_probs[row].tolist() + [float(top_log_probs[q, c])],
                bool(is_eos[q, c]), length_penalty, alpha))
        scores = np.take_along_axis(top_scores, keep, 1)
        done = at_limit | np.array(
            [is_done(finished[a], best, n_best, k, limit, length_penalty, alpha)
             for a, best, limit in zip(alive.tolist(), scores[:, 0].tolist(),
                                       limits[alive].tolist())], dtype=bool)
        if done.all():
            break
        active = np.flatnonzero(~done)
        order = np.take_along_axis(rows, keep, 1)[active].reshape(-1)  # (b' * k,) source rows
        alive, scores = alive[active], scores[active]
        tokens = np.take_along_axis(top_tokens, keep, 1)[active].reshape(-1)
        history = np.concatenate([history[order], tokens[:, None]], 1)
        history_log_probs = np.concatenate(
            [history_log_probs[order], np.take_along_axis(top_log_probs, keep, 1)[active].reshape(-1, 1)],
            1)
        state = model.reorder_state(state, order)
        if active.size < questions:
            memory = model.reorder_state(memory, active)
    return [sorted(hyps, key=lambda h: -h.normalized_score)[:n_best] for hyps in finished]


SEARCHES = searches_in(sys.modules[__name__])  # greedy and beam; sampling needs torch


def read_description(folder: str | Path) -> dict[str, Any]:
    """The ``model.json`` of an ONNX export folder, checked."""
    path = Path(folder) / "model.json"
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read the export's description ({e}); export the "
                              "model again with python -m qa_seq2seq.export --format onnx") from None
    if description.get("format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: format {description.get('format')!r}, not an ONNX export "
                              f"({ONNX_FORMAT!r}); export with --format onnx")
    return description


class OnnxAnswerer(Answering):
    """``Answerer`` for an ONNX export folder: the same questions, searches and answers.

    ``decode=None`` uses the search the model was validated with in training (greedy or beam);
    ``options`` override its options. ``threads``: onnxruntime's intra-op threads (0: default).
    """

    searches = SEARCHES

    def __init__(self, folder: str | Path, decode: str | None = None, *, batch_size: int = 64,
                 threads: int = 0, **options: Any):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.path = Path(folder)  # as Answerer's
        self.description = read_description(self.path)
        self.stored_decode = self.description.get("decode")
        self.tokenizer = Tokenizer((self.path / "tokenizer.model").read_bytes())
        self.reader = QuestionReader(self.description.get("data") or {}, self.tokenizer)
        try:
            self.model = OnnxModel(self.path, self.description["graphs"], threads)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise CheckpointError(f"{self.path}/model.json does not describe the graphs this "
                                  f"version reads ({type(e).__name__}: {e}); export the model "
                                  "again") from None
        self.batch_size = batch_size
        self.set_search(decode, options)

    def set_search(self, decode: str | None, options: dict[str, Any]) -> None:
        if decode == "sample":
            raise ConfigError("decode=sample: the ONNX runtime searches greedy or beam; sample with "
                              "the torch model (the run, or a weights export)")
        super().set_search(decode, options)

    def probe(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[UNK_ID]]), np.array([1])

    def answer_ids(self, ids: Sequence[Sequence[int]]) -> list[list[Hypothesis]]:
        """The n-best list of each tokenised source, in order (length-sorted batches, as
        ``qa_seq2seq.decoding.inference.answer``)."""
        if any(len(q) == 0 for q in ids):
            raise ValueError("every question needs at least one token")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        results: list[list[Hypothesis]] = [[] for _ in ids]
        reverse_target = self.reader.builder.reverse_target
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            lengths = np.array([len(ids[i]) for i in rows])
            src = np.full((len(rows), lengths.max()), PAD_ID, np.int64)
            for r, i in enumerate(rows):
                src[r, :lengths[r]] = ids[i]
            for i, hypotheses in zip(rows, self.search(self.model, src, lengths)):
                results[i] = with_texts(hypotheses, self.tokenizer, reverse_target)
        return results
