"""Place-value embeddings for the digits of the question's numbers (``model.net.number_places``).

Each digit piece of the question gets, added to its token embedding, an embedding of its place
in its number: units 0, tens 1, tenths -1, ... (clipped to ``[-max_place, max_place]``), found from the
pieces alone: a number is a run of digit pieces, its first ``.`` the decimal point. In
``-631.907871`` the ``6`` is at place 2 and the last ``1`` at place -6; in ``-29484`` the ``2``
at place 4. The encoder then knows each digit's place value from the first step, instead of
learning to count digits from a number's end (or its decimal point) before attention can align
an answer's digits with the question's: the plateau every arithmetic run starts with (Abacus
embeddings, McLeish et al. 2024, do the same for transformers).

With ``values`` (``model.net.number_values``) every digit of a number also gets a learned
function of the number's size: ``log10(1 + v) / 4`` and its leading digits ``v / 10^k`` in
[0.1, 1), so that which of two ages is larger is a direction in the embedding, there to be read
wherever the number is spoken of, rather than something to compute from its digits.

Which ids are digits (and their values) and which is the point comes from the tokenizer
(:meth:`set_pieces`, called by ``Seq2Seq.bind_vocabulary``) and is kept in buffers, so a
checkpoint carries it. Questions the encoder reads last token first (``data.reverse_source``)
are turned back per row to find the places.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from qa_seq2seq.errors import ConfigError

OTHER, DIGIT, POINT = 0, 1, 2
DIGITS = frozenset("0123456789")


class NumberPlaces(nn.Module):
    """Adds to each question digit's embedding an embedding of its place value.

    Args:
        vocab_size: the tokenizer's number of pieces.
        embedding_size: the token embeddings' size (place embeddings are added to them).
        max_place: places beyond ``max_place`` either way share the outermost embedding.
        values: also add a learned function of each number's size to its digits.
    """

    def __init__(self, vocab_size: int, embedding_size: int, max_place: int = 16,
                 values: bool = False):
        super().__init__()
        self.max_place = max_place
        self.embedding = nn.Embedding(2 * max_place + 1, embedding_size)  # places -max..max
        self.register_buffer("kinds", torch.zeros(vocab_size, dtype=torch.long))  # OTHER|DIGIT|POINT
        self.register_buffer("reversed", torch.zeros((), dtype=torch.bool))
        # Only with values, so that checkpoints made without them still load.
        self.values = nn.Linear(2, embedding_size, bias=False) if values else None
        self.register_buffer("digit_values", torch.zeros(vocab_size) if values else None)

    def extra_repr(self) -> str:
        return f"max_place={self.max_place}"

    def set_pieces(self, pieces: Sequence[str], reversed_source: bool) -> None:
        """Mark the digit pieces (``7``, or ``▁7`` at a word's start) and the point (``.``).

        Refuses pieces holding two digits or more (``94``): places need a piece per digit."""
        texts = [piece.lstrip("▁") for piece in pieces]
        if several := [p for p, t in zip(pieces, texts) if sum(c in DIGITS for c in t) > 1]:
            raise ConfigError(
                f"model.net.number_places=true needs one piece per digit, and the tokenizer has "
                f"{len(several)} pieces with several digits (e.g. {several[0]!r}): set "
                "data.tokenizer.split_digits=true or data.tokenizer.model_type=char")
        kinds = [DIGIT if t in DIGITS else POINT if p == "." else OTHER
                 for p, t in zip(pieces, texts)]
        self.kinds.copy_(torch.tensor(kinds))
        self.reversed.fill_(reversed_source)
        if self.digit_values is not None:
            self.digit_values.copy_(torch.tensor([float(t) if t in DIGITS else 0.0 for t in texts]))

    def forward(self, src: Tensor, lengths: Tensor) -> Tensor:
        """src (B, S) ids, lengths (B,) -> place embeddings (B, S, E), zeros off digits."""
        kinds = self.kinds[src]
        if self.reversed:
            kinds = flip_rows(kinds, lengths)
        place, digit, slot = numbers(kinds)
        if self.values is not None:
            digits = self.digit_values[src]
            if self.reversed:
                digits = flip_rows(digits, lengths)
            value = number_values(digits, place, digit, slot)
        if self.reversed:
            place, digit = flip_rows(place, lengths), flip_rows(digit, lengths)
        embedded = self.embedding(place.clamp(-self.max_place, self.max_place) + self.max_place)
        if self.values is not None:
            value = flip_rows(value, lengths) if self.reversed else value
            embedded = embedded + self.values(size_features(value))
        return embedded * digit[..., None]  # nothing added off digits


def number_places(kinds: Tensor) -> tuple[Tensor, Tensor]:
    """kinds (B, S) of OTHER|DIGIT|POINT in reading order -> places (B, S) and digit mask (B, S).

    A number is a run of digits and the points after them; a digit's place counts from the
    number's first point (or its end): units 0, tenths -1. A sentence's final ``.`` after a
    number changes no place, and neither does a second point (``1.2.3``: 0, -1, -3).
    """
    place, digit, _ = numbers(kinds)
    return place, digit


def number_values(digits: Tensor, place: Tensor, digit: Tensor, slot: Tensor) -> Tensor:
    """digits (B, S) each piece's digit value, and :func:`numbers`' places, digit mask and slots
    -> (B, S): the value of the number each digit belongs to (0 off digits)."""
    terms = torch.where(digit, digits * torch.pow(10.0, place.clamp(-16, 16).float()), 0.0)
    sums = torch.zeros(slot.numel() + slot.size(0), device=slot.device).scatter_add(
        0, slot.flatten(), terms.flatten())
    return torch.where(digit, sums[slot], 0.0)


def size_features(value: Tensor) -> Tensor:
    """value (B, S) >= 0 -> (B, S, 2): ``log10(1 + v) / 4`` and the leading digits
    ``v / 10^k`` in [0.1, 1) (linear within one order of magnitude: 18 < 90 as 0.18 < 0.9)."""
    magnitude = torch.log10(1 + value)
    leading = value / torch.pow(10.0, torch.floor(torch.log10(value.clamp(min=1e-30))) + 1)
    return torch.stack([magnitude / 4, torch.where(value > 0, leading, 0.0)], -1)


def numbers(kinds: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`number_places`' places and digit mask, and each position's slot: one per
    (row, number), row * (S + 1) for everything outside numbers."""
    batch, length = kinds.shape
    digit = kinds == DIGIT
    # A point after a digit joins the number; one that ends it ("Add 7.") anchors its places
    # where the number's end would, so it needs no check of the next position.
    point = (kinds == POINT) & F.pad(digit, (1, 0))[:, :-1]
    inside = digit | point
    starts = inside & ~F.pad(inside, (1, 0))[:, :-1]
    # one slot per (row, number); slot row * (S + 1) holds everything outside numbers
    slot = (torch.cumsum(starts.long(), 1) * inside
            + torch.arange(batch, device=kinds.device)[:, None] * (length + 1))
    position = torch.arange(length, device=kinds.device).expand(batch, length)
    end = torch.zeros(batch * (length + 1), dtype=torch.long, device=kinds.device)
    end = end.scatter_reduce(0, slot[inside], position[inside] + 1, "amax")  # one past the last
    first_point = torch.full_like(end, length + 1).scatter_reduce(
        0, slot[point], position[point], "amin")
    anchor = torch.minimum(end, first_point)[slot]  # (B, S): the point, else one past the end
    place = torch.where(position < anchor, anchor - position - 1, anchor - position)
    return place, digit, slot


def flip_rows(x: Tensor, lengths: Tensor) -> Tensor:
    """x (B, S) -> each row's first ``length`` entries reversed (an involution); padding kept."""
    position = torch.arange(x.size(1), device=x.device)
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(position < lengths, lengths - 1 - position, position)
    return x.gather(1, index)
