"""AnswererBase many questions: length-sorted batches through a search, results in input order.

Shared by evaluation and the decoding CLI; imports nothing heavier than torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from qa_seq2seq.data.batching import pad
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from qa_seq2seq.decoding.answerer_base import by_length
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
    def run(rows: list[Sequence[int]]) -> list[list[Hypothesis]]:
        src, lengths = pad(rows, PAD_ID)
        found = search(model, src.to(device), lengths.to(device))
        return found if tokenizer is None else [with_texts(h, tokenizer, reverse_target) for h in found]

    return by_length(questions, batch_size, run)


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
