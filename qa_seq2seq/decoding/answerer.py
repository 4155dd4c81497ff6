"""Answer questions from Python with a trained model (the decoding CLI is a thin user of this).

    from qa_seq2seq import Answerer

    qa = Answerer.from_checkpoint("outputs/toy_lstm/<run>", decode="beam", beam_size=5, n_best=3)
    for a in qa.answer(["Which is larger, 31 or 13?", {"question": "What is 3 plus 4?"}]):
        print(a.text, a.score, [h.text for h in a.n_best])

A question is a string, or a dict with the fields the model was trained on (``question``, or
those of its ``source_template``); it is built into a source, tokenised and cut exactly as in
training. ``decode`` names a search (``greedy``, ``beam``, ``sample``: the ``decode=`` choices
of training and ``evaluate``; default: the one the checkpoint was validated with); keyword
options are that search's arguments (``beam_size``, ``max_length``, ``length_penalty``,
``temperature``, ...) and are checked by name.

Imports only torch, sentencepiece and the weights (no Lightning, datasets or Hydra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from qa_seq2seq.data.batching import pad
from qa_seq2seq.data.tokenizer import PAD_ID
from qa_seq2seq.decoding import search
from qa_seq2seq.decoding.answerer_base import AnswererBase
from qa_seq2seq.decoding.checkpoint import LoadedModel, load_model
from qa_seq2seq.decoding.search_options import searches_in

SEARCHES = searches_in(search)


class Answerer(AnswererBase):
    """A loaded model, its tokenizer and source builder, and one search with its options.

    ``decode=None`` uses the search the checkpoint was validated with (``decode=`` at training,
    stored in the checkpoint; greedy for older ones), with its options; ``options`` override
    them. Naming another search starts from that search's defaults.
    """

    searches = SEARCHES

    def __init__(self, loaded: LoadedModel, decode: str | None = None, *, batch_size: int = 64,
                 device: str | torch.device = "cpu", **options: Any):
        self.checkpoint, self.device = loaded.checkpoint, device
        payload = loaded.checkpoint.payload
        super().__init__(loaded.model, loaded.tokenizer, loaded.checkpoint.path,
                         payload.get("data"), payload.get("decode"), decode, batch_size, options)

    def pad(self, ids: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        src, lengths = pad(ids, PAD_ID)
        return src.to(self.device), lengths.to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, decode: str | None = None, *,
                        batch_size: int = 64, device: str | torch.device = "cpu",
                        **options: Any) -> Answerer:
        """Load a checkpoint file or run directory (None: the newest run under ``outputs/``)."""
        return cls(load_model(path, device), decode, batch_size=batch_size, device=device,
                   **options)
