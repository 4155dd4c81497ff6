"""Answering many questions: length-sorted batches through a search, results in input order.

Shared by evaluation and the decoding CLI; imports nothing heavier than torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from qa_seq2seq.data.batching import pad
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from qa_seq2seq.decoding.hypotheses import Hypothesis, with_texts


def answer(model: torch.nn.Module, questions: Sequence[Sequence[int]], search: Callable,
           batch_size: int = 64, device: str | torch.device = "cpu",
           tokenizer: Tokenizer | None = None,
           reverse_target: bool = False) -> list[list[Hypothesis]]:
    """Run ``search`` over tokenised ``questions`` (each non-empty); one n-best list per question.

    Questions are sorted by length so each batch pads little; the result follows input order.
    With a ``tokenizer``, each hypothesis also carries its ``text`` (``hypotheses.with_texts``);
    ``tokens`` stay in the order the decoder wrote.
    """
    if any(len(q) == 0 for q in questions):
        raise ValueError("every question needs at least one token")
    order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
    results: list[list[Hypothesis]] = [[] for _ in questions]
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        src, lengths = pad([questions[i] for i in rows], PAD_ID)
        for i, hypotheses in zip(rows, search(model, src.to(device), lengths.to(device))):
            results[i] = hypotheses if tokenizer is None else with_texts(hypotheses, tokenizer,
                                                                         reverse_target)
    return results


@torch.inference_mode()
def alignment(model: torch.nn.Module, question: Sequence[int], hypothesis: Hypothesis,
              device: str | torch.device = "cpu") -> list[list[float]]:
    """Attention of one answered question: a row per answer token (and ``<eos>`` when finished),
    a column per question token in the order the encoder read it. Needs a model with attention."""
    tokens = hypothesis.tokens + ([EOS_ID] if hypothesis.finished else [])
    src = torch.tensor([list(question)], device=device)
    tgt_in = torch.tensor([[BOS_ID, *tokens[:-1]]] if tokens else [[BOS_ID]], device=device)
    weights = model.attention_weights(src, torch.tensor([len(question)]), tgt_in)[0]
    return weights[: max(len(tokens), 1)].tolist()
