"""Answer-quality metrics as pure functions, and what the wrong answers are.

Exact match and token F1 follow the SQuAD evaluation script: lower-case, strip punctuation and
the articles a/an/the, collapse white space; except that a number's sign and decimal point are
kept (SQuAD's rule would make ``-5`` equal ``5`` and ``-631.9`` equal ``6319``). BLEU and chrF
come from ``torchmetrics``.
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# A decimal point between digits, or a minus sign starting a number: part of the number.
_NUMBER_MARKS = re.compile(r"(?<=\d)\.(?=\d)|(?<![\w.])-(?=\.?\d)")


def _strip_punctuation(text: str) -> str:
    keep = {m.start() for m in _NUMBER_MARKS.finditer(text)}
    return "".join(c for i, c in enumerate(text) if i in keep or c not in string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no articles, single spaces), keeping
    numbers' signs and decimal points."""
    return " ".join(_ARTICLES.sub(" ", _strip_punctuation(text.lower())).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the answers are equal after SQuAD's normalisation, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def corpus_metrics(predictions: Sequence[str], golds: Sequence[str],
                   families: Sequence[str | None] | None = None) -> dict[str, float]:
    """Exact match and F1 (means in [0, 1]), BLEU-1 (answers are short) and chrF (0-100), answer
    lengths, and exact match and F1 per family when ``families`` are given."""
    from torchmetrics.functional.text import bleu_score, chrf_score

    n = len(predictions)
    if n == 0:
        return {"count": 0}
    em = [exact_match(p, g) for p, g in zip(predictions, golds)]
    f1 = [token_f1(p, g) for p, g in zip(predictions, golds)]
    pred_words = [len(p.split()) for p in predictions]
    result = {
        "count": n,
        "exact_match": sum(em) / n,
        "f1": sum(f1) / n,
        # Unigram BLEU (with brevity penalty): answers of one or two words have no 4-grams, and
        # torchmetrics' smoothing does not rescue one-word answers at n=2 either.
        "bleu1": 100 * float(bleu_score(list(predictions), [[g] for g in golds], n_gram=1)),
        "chrf": 100 * float(chrf_score(list(predictions), [[g] for g in golds])),
        "answer_words_mean": sum(pred_words) / n,
        "answer_words_max": max(pred_words),
        "gold_words_mean": sum(len(g.split()) for g in golds) / n,
        "empty_answers": sum(1 for p in predictions if not p.strip()) / n,
    }
    if families is not None and any(f is not None for f in families):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, family in enumerate(families):
            groups[str(family)].append(i)
        for family, rows in sorted(groups.items()):
            result[f"{family}/exact_match"] = sum(em[i] for i in rows) / len(rows)
            result[f"{family}/f1"] = sum(f1[i] for i in rows) / len(rows)
            result[f"{family}/count"] = len(rows)
    return result


WRONG = ("cut", "extended", "other_span", "nowhere")


def wrong_kind(prediction: str, gold: str, source: str) -> str:
    """What a wrong answer is, after normalisation: ``cut`` (a part of the gold answer: a name
    copied short), ``extended`` (the gold answer and more), ``other_span`` (something else the
    question or passage says), ``nowhere`` (not in the source; empty answers too)."""
    pred, want = normalize_answer(prediction), normalize_answer(gold)
    if pred and pred in want:
        return "cut"
    if want and want in pred:
        return "extended"
    if pred and pred in normalize_answer(source):
        return "other_span"
    return "nowhere"


def error_analysis(predictions: Sequence[str], golds: Sequence[str], sources: Sequence[str],
                   gold_pieces: Sequence[int], families: Sequence[str | None] | None = None
                   ) -> dict[str, float]:
    """Where answers go wrong, overall and per family: the share of wrong answers of each
    :func:`wrong_kind` (``wrong/cut`` ...), and exact match by the gold answer's length in pieces
    (``pieces/3/exact_match``, ``pieces/3/count``; 10 and more together as ``10+``)."""
    groups: dict[str, list[int]] = {"": list(range(len(golds)))}
    for i, family in enumerate(families or []):
        if family is not None:
            groups.setdefault(f"{family}/", []).append(i)
    result: dict[str, float] = {}
    for prefix, rows in groups.items():
        wrong = [i for i in rows if not exact_match(predictions[i], golds[i])]
        kinds = Counter(wrong_kind(predictions[i], golds[i], sources[i]) for i in wrong)
        for kind in WRONG:
            result[f"{prefix}wrong/{kind}"] = kinds[kind] / len(wrong) if wrong else 0.0
        by_length: dict[str, list[int]] = defaultdict(list)
        for i in rows:
            by_length[str(gold_pieces[i]) if gold_pieces[i] < 10 else "10+"].append(i)
        for length, members in sorted(by_length.items(), key=lambda kv: (len(kv[0]), kv[0])):
            result[f"{prefix}pieces/{length}/exact_match"] = sum(
                exact_match(predictions[i], golds[i]) for i in members) / len(members)
            result[f"{prefix}pieces/{length}/count"] = len(members)
    return result
