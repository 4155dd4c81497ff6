"""Finished hypotheses: their scores, length penalties, and when a question's beam may stop.

Shared by the torch searches (``qa_seq2seq.decoding.search``) and the torch-free runtime
(``qa_seq2seq.deployment.runtime``), so that both rank and stop by the same rule. Imports no torch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from qa_seq2seq.errors import ConfigError

LENGTH_PENALTIES = ("none", "average", "gnmt")


class Hypothesis(NamedTuple):
    """One answer a search returns: tokens, scores and whether it ended with ``<eos>``."""
    tokens: list[int]  # answer ids, without <bos> and <eos>
    score: float  # total log-probability, <eos> included when finished
    normalized_score: float  # score after the length penalty: what beam search ranks by
    token_log_probs: list[float]  # one per emitted token, <eos> included when finished
    finished: bool  # ended with <eos> (False: cut at the length limit)
    text: str = ""  # the detokenised answer, filled in when answering


def check_beam_options(beam_size: int, n_best: int, length_penalty: str) -> None:
    """Refuse a beam size, n-best or length penalty beam search cannot use."""
    if beam_size < 1:
        raise ConfigError(f"decode.beam_size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ConfigError(f"decode.n_best must be between 1 and beam_size={beam_size}, got {n_best}")
    if length_penalty not in LENGTH_PENALTIES:
        raise ConfigError(f"decode.length_penalty={length_penalty!r}: use one of {LENGTH_PENALTIES}")


def length_penalty(length, mode: str, alpha: float):
    """Divisor of the score: 1 (``none``), the length (``average``), ((5+len)/6)^alpha (``gnmt``)."""
    if mode == "none":
        return 1.0
    if mode == "average":
        return length
    return ((5.0 + length) / 6.0) ** alpha


def hypothesis(tokens: list[int], log_probs: list[float], finished: bool, mode: str,
               alpha: float) -> Hypothesis:
    """``tokens`` as emitted (ending in ``<eos>`` when ``finished``) with their log-probs."""
    score = sum(log_probs)
    answer = tokens[:-1] if finished else tokens
    return Hypothesis(answer, score, score / length_penalty(len(tokens), mode, alpha), log_probs,
                      finished)


def is_done(finished: list[Hypothesis], best_live: float, n_best: int, beam_size: int,
            limit: int, mode: str, alpha: float) -> bool:
    """No live hypothesis (best raw score ``best_live``) can enter this question's n-best.

    With ``mode=none`` this is exact (scores only fall); with a penalty the bound assumes the
    live hypothesis grows to the length ``limit``, and a question also stops once ``beam_size``
    hypotheses have finished (as fairseq does).
    """
    if len(finished) < n_best:
        return False
    if mode != "none" and len(finished) >= beam_size:
        return True
    worst_kept = sorted(h.normalized_score for h in finished)[-n_best]
    best_possible = best_live / length_penalty(limit, mode, alpha)  # scores are <= 0
    return best_possible <= worst_kept


def with_texts(hypotheses: list[Hypothesis], tokenizer, reverse_target: bool) -> list[Hypothesis]:
    """The n-best list with each hypothesis's ``text`` (read last token first for a model trained
    with ``data.reverse_target``). Hypotheses with the same text (token sequences that differ
    only in pieces that detokenise to nothing, such as a lone ``▁``) are merged into the best
    ranked of them, so the list may get shorter."""
    texts = tokenizer.decode([h.tokens[::-1] if reverse_target else h.tokens for h in hypotheses])
    best: dict[str, Hypothesis] = {}  # ranked best first: the first of a text wins
    for text, h in zip(texts, hypotheses):
        best.setdefault(text, h._replace(text=text))
    return list(best.values())


def block_repeated_ngrams(log_probs, history, n: int) -> None:
    """Forbid each row's tokens that would repeat an n-gram already in its history: log_probs
    (R, V) and history (R, T), torch tensors or numpy arrays."""
    for row, seq in enumerate(history.tolist()):  # shorter than n: nothing to repeat yet
        prefix = tuple(seq[len(seq) - n + 1:])  # the last n - 1 tokens (none for n = 1)
        banned = [seq[i + n - 1] for i in range(len(seq) - n + 1)
                  if tuple(seq[i:i + n - 1]) == prefix]
        if banned:
            log_probs[row, banned] = -math.inf
