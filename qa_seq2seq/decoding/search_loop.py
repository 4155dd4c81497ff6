"""Greedy and beam search, written once over :class:`~qa_seq2seq.decoding.arrays.Arrays`: the
torch searches (qa_seq2seq.decoding.search) and the ONNX runtime's (qa_seq2seq.deployment.runtime)
are these loops on torch tensors and on numpy arrays.

The model is reached through ``step(tokens, state)`` per output position and
``reorder_state(state, order)`` to select, repeat or drop batch rows; the caller encodes.
Questions whose answers are complete leave the batch at once, so later steps run on fewer rows;
the search stops when every question is done. Padding and ``<bos>`` are never emitted; blocking
happens after the softmax, so a returned score is exactly the model's teacher-forced
log-probability of the returned tokens (plus ``<eos>`` when finished). Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.decoding.arrays import Array, Arrays
from qa_seq2seq.decoding.hypotheses import (
    Hypothesis,
    block_repeated_ngrams,
    check_beam_options,
    hypothesis,
    is_done,
)
from qa_seq2seq.errors import ConfigError

# choose(log_probs (R, V)) -> (the chosen tokens' log-probabilities (R,), the tokens (R,))
Choose = Callable[[Array], tuple[Array, Array]]


def limits(src_lengths: list[int], max_length: int, max_length_ratio: float | None) -> list[int]:
    """Each question's cap on answer tokens: ``max_length``, and ``ceil(ratio * its length)``."""
    if max_length < 1:
        raise ConfigError(f"decode.max_length must be >= 1, got {max_length}")
    if max_length_ratio is None:
        return [max_length] * len(src_lengths)
    return [min(max_length, max(1, math.ceil(n * max_length_ratio))) for n in src_lengths]


def log_probs(model: Any, xp: Arrays, tokens: Array, state: Any, t: int, min_length: int):
    """One step: log-probabilities (rows, V) with pad/bos (and early eos) blocked."""
    logits, state = model.step(tokens, state)
    scores = xp.log_softmax(logits)
    scores[:, PAD_ID] = -math.inf
    scores[:, BOS_ID] = -math.inf
    if t < min_length:
        scores[:, EOS_ID] = -math.inf
    return scores, state


def greedy(xp: Arrays, log_probs: Array) -> tuple[Array, Array]:
    """The most likely token of each row (the first of equals)."""
    best, tokens = xp.top(log_probs, 1)
    return best[:, 0], tokens[:, 0]


def single_path(model: Any, xp: Arrays, state: Any, src_lengths: Array, choose: Choose,
                max_length: int, max_length_ratio: float | None,
                min_length: int) -> list[list[Hypothesis]]:
    """One token per question per step, chosen by ``choose``; (B, 1) hypotheses."""
    batch = len(src_lengths)
    limit = xp.of(limits(src_lengths.tolist(), max_length, max_length_ratio), src_lengths)
    steps = int(limit.max())
    out_tokens = xp.full((batch, steps), 0, src_lengths)
    out_log_probs = xp.full((batch, steps), 0.0, src_lengths)
    lengths = xp.full((batch,), 0, src_lengths)
    finished = xp.full((batch,), False, src_lengths)
    alive = xp.arange(batch, src_lengths)  # question of each row
    tokens = xp.full((batch,), BOS_ID, src_lengths)
    for t in range(steps):
        scores, state = log_probs(model, xp, tokens, state, t, min_length)
        log_prob, tokens = choose(scores)
        out_tokens[alive, t], out_log_probs[alive, t] = tokens, log_prob
        ended = tokens == EOS_ID
        done = ended | (limit[alive] <= t + 1)
        lengths[alive], finished[alive] = t + 1, ended
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = xp.where(~done)
            alive, tokens = alive[keep], tokens[keep]
            state = model.reorder_state(state, keep)
    tokens_, log_probs_ = out_tokens.tolist(), out_log_probs.tolist()  # one copy, not B
    return [[hypothesis(tokens_[i][:n], log_probs_[i][:n], done, "none", 0.0)]
            for i, (n, done) in enumerate(zip(lengths.tolist(), finished.tolist()))]


def beam(model: Any, xp: Arrays, state: Any, src_lengths: Array, beam_size: int, n_best: int,
         max_length: int, max_length_ratio: float | None, min_length: int, length_penalty: str,
         alpha: float, no_repeat_ngram_size: int) -> list[list[Hypothesis]]:
    """Beam search over batch x beam rows, flattened into one dimension; ``state`` holds one row
    per question, and the first step runs once per question (its k beams are one).

    A question stops when its ``n_best`` finished hypotheses cannot be beaten by any live one:
    with ``length_penalty=none`` this is exact (scores only fall); with a penalty the bound
    assumes the live hypothesis grows to the length limit, and the search also stops once
    ``beam_size`` hypotheses have finished (as fairseq does).
    """
    check_beam_options(beam_size, n_best, length_penalty)
    batch, k = len(src_lengths), beam_size
    limit = xp.of(limits(src_lengths.tolist(), max_length, max_length_ratio), src_lengths)
    alive = xp.arange(batch, src_lengths)  # question of each block of rows (1, then k)
    scores = xp.full((batch, k), -math.inf, src_lengths)
    scores[:, 0] = 0.0  # the first step expands one beam only
    history = xp.full((batch * k, 0), 0, src_lengths)
    history_log_probs = xp.full((batch * k, 0), 0.0, src_lengths)
    tokens = xp.full((batch,), BOS_ID, src_lengths)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for t in range(int(limit.max())):
        step_scores, state = log_probs(model, xp, tokens, state, t, min_length)
        if t == 0:  # the k beams of a question are one: run the decoder once, copy the result
            step_scores = xp.repeat_rows(step_scores, k)
        vocab, questions = step_scores.shape[1], len(alive)
        if no_repeat_ngram_size > 0:
            block_repeated_ngrams(step_scores, history, no_repeat_ngram_size)
        candidates = (scores[:, :, None] + step_scores.reshape(questions, k, vocab)).reshape(
            questions, k * vocab)
        width = min(2 * k, k * vocab)
        top_scores, top_ids = xp.top(candidates, width)  # (b, 2k) best first
        rows = top_ids // vocab + (xp.arange(questions, top_ids) * k)[:, None]
        top_tokens = top_ids % vocab
        top_log_probs = step_scores[rows, top_tokens]
        is_eos = (top_tokens == EOS_ID) & xp.isfinite(top_scores)
        at_limit = limit[alive] <= t + 1  # (b,)
        # The k best candidates that do not end, per question (at least k of the 2k do not).
        rank = xp.arange(width, top_ids)[None, :]  # (1, 2k): broadcasts over questions
        keep = xp.top(-(rank + is_eos * width), k)[1]  # (b, k)
        # Candidates that finish now: <eos> among the k best, or every kept one at the limit.
        ending = (is_eos & (rank < k)) | (
            xp.scatter_true(is_eos, keep) & at_limit[:, None] & xp.isfinite(top_scores))
        # Host-side bookkeeping reads whole arrays once per step (``tolist``), not element by
        # element.
        alive_ = alive.tolist()
        if ended := [(q, c) for q, row in enumerate(ending.tolist()) for c, e in enumerate(row) if e]:
            rows_, tokens_ = rows.tolist(), top_tokens.tolist()
            log_probs_, eos_ = top_log_probs.tolist(), is_eos.tolist()
            for q, c in ended:
                row = rows_[q][c]
                finished[alive_[q]].append(hypothesis(
                    history[row].tolist() + [tokens_[q][c]],
                    history_log_probs[row].tolist() + [log_probs_[q][c]],
                    eos_[q][c], length_penalty, alpha))
        scores = xp.gather(top_scores, keep)
        done = [stop or is_done(finished[a], best, n_best, k, cap, length_penalty, alpha)
                for a, best, cap, stop in zip(alive_, scores[:, 0].tolist(),
                                              limit[alive].tolist(), at_limit.tolist())]
        if all(done):
            break
        active = xp.of([q for q, stop in enumerate(done) if not stop], alive)
        order = xp.gather(rows, keep)[active].reshape(-1)  # (b' * k,) source rows
        alive, scores = alive[active], scores[active]
        tokens = xp.gather(top_tokens, keep)[active].reshape(-1)
        history = xp.cat([history[order], tokens[:, None]])
        history_log_probs = xp.cat(
            [history_log_probs[order], xp.gather(top_log_probs, keep)[active].reshape(-1, 1)])
        state = model.reorder_state(state, order if t else order // k)
    return [sorted(hyps, key=lambda h: -h.normalized_score)[:n_best] for hyps in finished]
