"""The sequence-to-sequence network: embeddings, a many-to-one encoder, a bridge, a decoder.

Parameter scopes (stable names, used by config globs, ``inspect`` and checkpoints)::

    encoder.embedding.weight          (V, E)
    encoder.rnn.weight_ih_l0 ...      the encoder RNN, torch's names
    bridge.h.weight ...               only with model.bridge=linear
    decoder.embedding.weight          (V, E)
    decoder.rnn.weight_hh_l1 ...      the decoder RNN
    decoder.output.weight, .bias      (V, H_dec)

Construction order: modules -> weight sharing -> initializer -> warm start -> freezing; each step
sees the result of the one before. The search algorithms talk to the model through ``encode``,
``step`` and ``reorder_state`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from qa_seq2seq.bridge import Bridge, Side
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.rnn import Recurrent, State
from qa_seq2seq.scopes import freeze_

if TYPE_CHECKING:
    from qa_seq2seq.initializers import Initializer
    from qa_seq2seq.sharing import Sharing
    from qa_seq2seq.warm_start import WarmStart

RNNFactory = Callable[..., Recurrent]


class EncoderOutput(NamedTuple):
    output: Tensor  # (B, S, D*H_out), zeros at padding
    state: State  # (L, B, D*H_out) and (L, B, D*H): taken at each question's true length


class DecoderState(NamedTuple):
    """Everything the decoder carries from one step to the next."""

    rnn: State  # (L, B, H_out), (L, B, H)
    context: Tensor | None  # (B, C): encoder summary fed at every step, or None


class Encoder(nn.Module):
    """Embeds a right-padded question and runs the RNN over it; many-to-one."""

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, dropout: float = 0.0):
        super().__init__()
        self.embedding, self.rnn, self.dropout = embedding, rnn, nn.Dropout(dropout)

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src (B, S) token ids, lengths (B,) -> final state at each true length."""
        out = self.rnn(self.dropout(self.embedding(src)), lengths)
        return EncoderOutput(out.output, merge_directions(out.state, self.rnn.num_directions))


class Decoder(nn.Module):
    """Teacher-forced (``forward``) or step-wise RNN decoder with an output layer."""

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, output: nn.Linear,
                 dropout: float = 0.0):
        super().__init__()
        self.embedding, self.rnn, self.output = embedding, rnn, output
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """tokens (B, T) -> logits (B, T, V) and the state after the last step."""
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        if state.context is not None:
            x = torch.cat([x, state.context[:, None].expand(-1, x.size(1), -1)], -1)
        out = self.rnn(x, None, state.rnn)
        return self.output(self.dropout(out.output)), DecoderState(out.state, state.context)


class Seq2Seq(nn.Module):
    """Encoder RNN -> bridge -> teacher-forced decoder RNN -> vocabulary logits.

    Args:
        vocab_size: shared source/target vocabulary (the tokenizer's).
        cell: factory for both RNNs (a Hydra ``_partial_`` of a ``qa_seq2seq.rnn`` class);
            ``encoder_cell`` / ``decoder_cell`` replace it for one side.
        embedding_size, hidden_size, num_layers: sizes; a cell config's own non-null
            ``hidden_size`` / ``num_layers`` win over these.
        bidirectional_encoder: run the encoder both ways (its state size doubles).
        bridge: ``state`` | ``hidden_only`` | ``linear`` | ``none`` (see ``qa_seq2seq.bridge``).
        feed_encoder_state: also concatenate the encoder's final top-layer ``h`` to every
            decoder input.
        dropout: on embeddings and on the decoder output before the vocabulary projection.
        sharing, init, init_from, freeze: applied in this order after construction.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: RNNFactory,
        embedding_size: int = 64,
        hidden_size: int = 256,
        num_layers: int = 2,
        encoder_cell: RNNFactory | None = None,
        decoder_cell: RNNFactory | None = None,
        bidirectional_encoder: bool = False,
        bridge: str = "state",
        feed_encoder_state: bool = False,
        dropout: float = 0.0,
        sharing: Sharing | None = None,
        init: Initializer | None = None,
        init_from: WarmStart | None = None,
        freeze: Sequence[str] = (),
    ):
        super().__init__()
        sizes = {"hidden_size": hidden_size, "num_layers": num_layers}
        enc_rnn = _make_rnn(encoder_cell or cell, "encoder", embedding_size, sizes,
                            bidirectional=bidirectional_encoder)
        directions = enc_rnn.num_directions
        enc_side = Side(enc_rnn.num_layers, directions * enc_rnn.output_size,
                        directions * enc_rnn.hidden_size if enc_rnn.has_cell_state else None)
        self.context_size = enc_side.h_size if feed_encoder_state else 0
        dec_rnn = _make_rnn(decoder_cell or cell, "decoder", embedding_size + self.context_size,
                            sizes)
        if dec_rnn.bidirectional:
            raise ConfigError("the decoder cannot be bidirectional: set the decoder cell's "
                             "bidirectional=false (use model.bidirectional_encoder for the encoder)")
        dec_side = Side(dec_rnn.num_layers, dec_rnn.output_size,
                        dec_rnn.hidden_size if dec_rnn.has_cell_state else None)

        self.encoder = Encoder(nn.Embedding(vocab_size, embedding_size), enc_rnn, dropout)
        self.bridge = Bridge(bridge, enc_side, dec_side)
        self.decoder = Decoder(nn.Embedding(vocab_size, embedding_size), dec_rnn,
                               nn.Linear(dec_side.h_size, vocab_size), dropout)
        self.vocab_size = vocab_size
        if sharing is not None:
            sharing.apply(self)
        if init is not None:
            init(self)
        if init_from is not None:
            init_from(self)
        freeze_(self, freeze)

    # ----- training ---------------------------------------------------------------------------
    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor,
                initial_state: State | None = None) -> Tensor:
        """Teacher forcing: src (B, S), src_lengths (B,), tgt_in (B, T) = ``<bos> answer``.

        ``initial_state`` (L, B, H) replaces the bridged encoder state. Returns logits (B, T, V).
        """
        state = self.encode(src, src_lengths)
        if initial_state is not None:
            state = state._replace(rnn=initial_state)
        logits, _ = self.decoder(tgt_in, state)
        return logits

    # ----- the search contract ----------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        """Run the encoder once: src (B, S), src_lengths (B,) -> the decoder's initial state."""
        encoded = self.encoder(src, src_lengths)
        context = encoded.state.h[-1] if self.context_size else None  # (B, C)
        return DecoderState(self.bridge(encoded.state), context)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step: tokens (B,) -> logits (B, V) and the next state."""
        logits, state = self.decoder(tokens[:, None], state)
        return logits[:, 0], state

    @staticmethod
    def reorder_state(state: DecoderState, order: Tensor) -> DecoderState:
        """Select/repeat batch rows: ``order`` (B',) indexes the batch dimension."""
        rnn = State(*(None if s is None else s.index_select(1, order) for s in state.rnn))
        context = None if state.context is None else state.context.index_select(0, order)
        return DecoderState(rnn, context)


def merge_directions(state: State, directions: int) -> State:
    """torch layout (L*D, B, H) -> model layout (L, B, D*H), directions side by side."""
    if directions == 1:
        return state

    def merge(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        layers_dirs, batch, size = x.shape
        x = x.view(layers_dirs // directions, directions, batch, size)
        return x.permute(0, 2, 1, 3).reshape(layers_dirs // directions, batch, directions * size)

    return State(merge(state.h), merge(state.c))


def _make_rnn(factory: RNNFactory, name: str, input_size: int, sizes: dict[str, int],
              **kwargs) -> Recurrent:
    """Call a cell factory; its own non-null ``hidden_size``/``num_layers`` win over ``sizes``."""
    own = getattr(factory, "keywords", {})
    resolved = {key: own.get(key) or value for key, value in sizes.items()}
    return factory(input_size=input_size, name=name, **resolved, **kwargs)
