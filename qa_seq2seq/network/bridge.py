"""How the encoder's final state becomes the decoder's initial state (``model.net.bridge``).

- ``state``: pass ``(h, c)`` of every layer as it is (sizes must match);
- ``hidden_only``: pass ``h``, start ``c`` at zero;
- ``linear``: learned projections ``h_dec = W_h h_enc + b`` and ``c_dec = W_c c_enc + b`` (from
  ``h_enc`` when the encoder has no ``c``), for differing sizes, bidirectional encoders, or
  LSTM -> GRU pairs;
- ``none``: zeros.

Layer mapping when depths differ: top layers are aligned. Decoder layer ``L_dec - 1 - k`` takes
encoder layer ``L_enc - 1 - k``; surplus encoder layers (at the bottom) are dropped, surplus decoder
layers (at the bottom) start at zero.

The bridge reads an :class:`EncoderState`, layers by layer with a bidirectional encoder's two
directions side by side, ``(L, B, D*H)``, and returns the decoder RNN's ``State``, in torch's
layout ``(L*D, B, H)`` with ``D = 1``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.rnn import State

BRIDGES = ("state", "hidden_only", "linear", "none")


class EncoderState(NamedTuple):
    """The encoder's final state, directions merged: ``h`` (L, B, D*H_out), ``c`` (L, B, D*H) or
    None (torch's ``State`` keeps them as separate rows: (L*D, B, H))."""

    h: Tensor
    c: Tensor | None = None


class Side(NamedTuple):
    """What one side's state looks like: ``num_layers`` x ``h_size`` (and ``c_size`` or None)."""

    num_layers: int
    h_size: int
    c_size: int | None


class Bridge(nn.Module):
    """The encoder's final state turned into the decoder's initial one (``model.net.bridge``)."""
    def __init__(self, mode: str, encoder: Side, decoder: Side):
        super().__init__()
        if mode not in BRIDGES:
            raise ConfigError(f"model.net.bridge={mode!r} is not one of {BRIDGES}")
        self.mode, self.encoder_side, self.decoder_side = mode, encoder, decoder
        if mode == "state":
            wrong = []
            if encoder.h_size != decoder.h_size:
                wrong.append(f"h size {encoder.h_size} vs {decoder.h_size}")
            if encoder.c_size != decoder.c_size:
                wrong.append(f"c size {encoder.c_size} vs {decoder.c_size} (None: no c)")
            if wrong:
                raise ConfigError(
                    f"model.net.bridge=state passes the encoder state unchanged, but encoder and "
                    f"decoder states differ ({'; '.join(wrong)}; a bidirectional encoder doubles "
                    f"its size; a GRU or RNN has no c). Use "
                    f"model.net.bridge=linear, or make the sizes and cell types match."
                )
        if mode == "hidden_only" and encoder.h_size != decoder.h_size:
            raise ConfigError(
                f"model.net.bridge=hidden_only needs equal h sizes, got encoder {encoder.h_size} and "
                f"decoder {decoder.h_size}; use model.net.bridge=linear"
            )
        if mode == "linear":
            self.h = nn.Linear(encoder.h_size, decoder.h_size)
            if decoder.c_size is not None:
                self.c = nn.Linear(encoder.c_size or encoder.h_size, decoder.c_size)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, encoder={tuple(self.encoder_side)}, decoder={tuple(self.decoder_side)}"

    def forward(self, encoder_state: EncoderState) -> State:
        """Encoder state (L_enc, B, ·) -> decoder initial state (L_dec, B, ·)."""
        dec = self.decoder_side
        batch = encoder_state.h.size(1)
        if self.mode == "none":
            return self._zeros(encoder_state.h, batch)
        h, c = self._align(encoder_state.h), self._align(encoder_state.c)
        if self.mode == "linear":
            c_source = h if c is None else c
            c = self.c(c_source) if dec.c_size is not None else None
            h = self.h(h)
        elif self.mode == "hidden_only" or dec.c_size is None:
            c = None if dec.c_size is None else h.new_zeros(h.shape[:-1] + (dec.c_size,))
        return State(self._pad_bottom(h), None if c is None else self._pad_bottom(c))

    def _align(self, x: Tensor | None) -> Tensor | None:
        """Keep the encoder's top ``L_dec`` layers."""
        return None if x is None else x[-self.decoder_side.num_layers:]

    def _pad_bottom(self, x: Tensor) -> Tensor:
        missing = self.decoder_side.num_layers - x.size(0)
        if missing <= 0:
            return x
        return torch.cat([x.new_zeros((missing,) + x.shape[1:]), x])

    def _zeros(self, like: Tensor, batch: int) -> State:
        dec = self.decoder_side
        h = like.new_zeros(dec.num_layers, batch, dec.h_size)
        c = None if dec.c_size is None else like.new_zeros(dec.num_layers, batch, dec.c_size)
        return State(h, c)
