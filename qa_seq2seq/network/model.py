"""The sequence-to-sequence network: embeddings, a many-to-one encoder, a bridge, a decoder.

Parameter scopes (stable names, used by config globs, ``parameters`` and checkpoints)::

    encoder.embedding.weight          (V, E)
    encoder.places.embedding.weight   (2 x max_place + 1, E): only with model.net.number_places
    encoder.places.values.weight      (E, 2): only with model.net.number_values
    encoder.match.embedding.weight    (2 + match_words, E): only with model.net.match_separator
    encoder.match.pool.weight, .bias  (D, D): only with model.net.match_pooling
    encoder.rnn.weight_ih_l0 ...      the encoder RNN, torch's names
    encoder.self_attention.layers.0.* only with model.net.self_attention_layers (torch's names)
    bridge.h.weight ...               only with model.net.bridge=linear
    decoder.embedding.weight          (V, E)
    decoder.rnn.weight_hh_l1 ...      the decoder RNN
    decoder.output.weight, .bias      (V, H_dec)
    decoder.attention.out.weight ...  only with model/net/attention (see qa_seq2seq.network.attention)
    decoder.thinking                  (E,): only with model.net.thinking_steps > 0
    decoder.pooling.key.weight ...    only with model.net.feed_encoder_state=pooled
    decoder.copy.switch.weight, .bias only with model.net.copy (see qa_seq2seq.network.pointer)
    decoder.span.follow, .embedding.weight  only with model.net.copy_span (see qa_seq2seq.network.spans)

``encoder``, ``bridge`` and ``decoder`` are the default names of the three scopes; ``scopes``
renames them (``{"encoder": "question_encoder"}`` gives ``question_encoder.rnn.weight_ih_l0``).

The network is architecture only: ``qa_seq2seq.network.builder.build_network`` builds its parts from a
config and ties the shared ones; it never reads a file. How training initialises, warm-starts and
freezes it is the LightningModule's business (``qa_seq2seq.training.module``). The search algorithms talk
to the network through ``encode``, ``step`` and ``reorder_state`` only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import NamedTuple

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.attention import Attention, Memory, Pooling, SelfAttention
from qa_seq2seq.network.bridge import Bridge, EncoderState
from qa_seq2seq.network.dropout import Dropout, dropout
from qa_seq2seq.network.matching import SourceMatch
from qa_seq2seq.network.places import NumberPlaces
from qa_seq2seq.network.pointer import CopyGenerator
from qa_seq2seq.network.rnn import Recurrent, State
from qa_seq2seq.network.spans import SpanFollowing

SCOPES = ("encoder", "bridge", "decoder")


class EncoderOutput(NamedTuple):
    """The encoder's outputs at every position and its final state."""
    output: Tensor  # (B, S, D*H_out), zeros at padding
    state: EncoderState  # (L, B, D*H_out) and (L, B, D*H): at each question's true length


class DecoderState(NamedTuple):
    """Everything the decoder carries from one step to the next."""

    rnn: State  # (L, B, H_out), (L, B, H)
    context: Tensor | None = None  # (B, C): encoder summary fed at every step (feed_encoder_state)
    memory: Memory | None = None  # the encoder outputs, for attention
    feed: Tensor | None = None  # (B, H_out): the last attentional vector (input feeding)
    span: Tensor | None = None  # (B, S) int64: the source spans the answer ends with (copy_span)


class DecoderOutput(NamedTuple):
    """The decoder's scores for each answer position, its last state and its attention."""
    logits: Tensor  # (B, T, V); with copy attention, log-probabilities (qa_seq2seq.network.pointer)
    state: DecoderState  # after the last step
    attention: Tensor | None  # (B, T, S) weights over the source, or None without attention
    generate: Tensor | None = None  # (B, T) copy attention's switch: P(generate), else None


class Encoder(nn.Module):
    """Embeds a right-padded question and runs the RNN over it; many-to-one. ``places`` adds
    each digit's place-value embedding to its token embedding (``qa_seq2seq.network.places``), ``match``
    the embedding of whether a piece occurs on both sides of a separator (``qa_seq2seq.network.matching``);
    ``self_attention`` runs over the RNN's outputs (``qa_seq2seq.network.attention.SelfAttention``;
    the final state is the RNN's).
    """

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, dropout: float = 0.0,
                 places: NumberPlaces | None = None, match: SourceMatch | None = None,
                 self_attention: SelfAttention | None = None):
        super().__init__()
        self.embedding, self.rnn, self.dropout = embedding, rnn, Dropout(dropout)
        self.places, self.match, self.self_attention = places, match, self_attention

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src (B, S) token ids, lengths (B,) -> final state at each true length."""
        x = self.embedding(src)  # (B, S, E)
        if self.places is not None:
            x = x + self.places(src, lengths)
        if self.match is not None:
            x = x + self.match(src, lengths)
        out = self.rnn(self.dropout(x), lengths)
        output = out.output
        if self.match is not None and self.match.pool is not None:
            output = output + self.match.mentions(output, src, lengths)
        if self.self_attention is not None:
            output = self.self_attention(output, lengths)
        return EncoderOutput(output, merge_directions(out.state, self.rnn.num_directions))


class Decoder(nn.Module):
    """Teacher-forced (``forward`` over a whole answer) or step-wise RNN decoder.

    Optional parts: ``attention`` over the encoder outputs after each RNN step; ``input_feeding``
    (the previous attentional vector joins each step's input, so the RNN runs step by step);
    ``thinking_steps`` (a learned input, ``decoder.thinking``, fed that many times before
    ``<bos>`` with no output; Saxton et al. 2019); ``pooling`` (the question summary of
    ``feed_encoder_state=pooled``, computed once per question by ``Seq2Seq.encode``); ``upper``
    (``attend_from=bottom``: ``rnn`` is then the bottom layer alone, whose outputs query the
    attention, and ``upper`` the layers above it, reading [h_t; context_t]; ``upper_dropout``
    is the cell's dropout between layers, there between the two); ``copy`` (copy attention:
    each step's distribution mixes the output layer's with the attention over the source tokens,
    ``qa_seq2seq.network.pointer``); ``span`` (copying that continues a span: each step's
    attention and input know where the answer so far stands in the source,
    ``qa_seq2seq.network.spans``).
    """

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, output: nn.Linear,
                 dropout: float = 0.0, attention: Attention | None = None,
                 input_feeding: bool = False, thinking_steps: int = 0,
                 pooling: Pooling | None = None, upper: Recurrent | None = None,
                 upper_dropout: float = 0.0, copy: CopyGenerator | None = None,
                 span: SpanFollowing | None = None):
        super().__init__()
        self.embedding, self.rnn, self.output, self.copy = embedding, rnn, output, copy
        self.span = span
        self.upper, self.upper_dropout = upper, upper_dropout
        self.pooling = pooling
        self.dropout = Dropout(dropout)
        self.attention, self.input_feeding = attention, input_feeding
        self.thinking_steps = thinking_steps
        if thinking_steps:  # drawn like an embedding row: N(0, 1)
            self.thinking = nn.Parameter(torch.randn(embedding.embedding_dim))

    def forward(self, tokens: Tensor, state: DecoderState) -> DecoderOutput:
        """tokens (B, T) -> logits (B, T, V), the state after the last step, attention."""
        inputs = self.dropout(self.embedding(tokens))  # (B, T, E)
        bias = None
        if self.span is not None:
            follow = self.span(tokens, state.memory.ids, state.memory.mask, state.span)
            inputs, bias = inputs + follow.inputs, follow.bias
            state = state._replace(span=follow.run)
        hidden, state, weights = self._hidden(inputs, state, bias)
        logits, generate = self.output(self.dropout(hidden)), None
        if self.copy is not None:  # log-probabilities, which the loss and searches read as logits
            logits, generate = self.copy(logits, hidden, inputs, weights, state.memory.ids)
        return DecoderOutput(logits, state, weights, generate)

    @contextmanager
    def one_dropout_mask(self) -> Iterator[None]:
        """Inside it, the decoder's RNNs keep the recurrent-dropout masks of their first call
        (``Recurrent.one_dropout_mask``): one mask per sequence when a sequence takes several
        calls (thinking steps, then scheduled sampling or input feeding a step per call)."""
        with ExitStack() as stack:
            for rnn in (self.rnn, self.upper):
                if rnn is not None:
                    stack.enter_context(rnn.one_dropout_mask())
            yield

    def think(self, state: DecoderState) -> DecoderState:
        """Run the thinking steps from ``state`` (no outputs, so no loss and nothing emitted)."""
        if not self.thinking_steps:
            return state
        x = self.thinking.expand(state.rnn.h.size(1), self.thinking_steps, -1)  # (B, N, E)
        return self._hidden(x, state)[1]

    def _hidden(self, x: Tensor, state: DecoderState, bias: Tensor | None = None
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """x (B, T, E) inputs -> the top outputs (B, T, H_out), the new state, attention;
        ``bias`` (B, T, S) is added to the attention scores."""
        if state.context is not None:
            x = torch.cat([x, state.context[:, None].expand(-1, x.size(1), -1)], -1)
        if self.input_feeding:
            return self._fed(x, state, bias)
        if self.upper is not None:
            return self._from_bottom(x, state, bias)
        out = self.rnn(x, None, state.rnn)  # the whole answer in one (fused) call
        if self.attention is None:
            return out.output, state._replace(rnn=out.state), None
        attended = self.attention(out.output, state.memory, bias)  # one matmul for all steps
        return attended.hidden, state._replace(rnn=out.state), attended.weights

    def _from_bottom(self, x: Tensor, state: DecoderState, bias: Tensor | None
                     ) -> tuple[Tensor, DecoderState, Tensor]:
        """``attend_from=bottom`` (Wu et al. 2016): the bottom layer's outputs query the
        attention, and the layers above read [h_t; context_t], so every step of them sees the
        question where it looked; one fused call per part, as without attention."""
        h, c = state.rnn
        below = self.rnn(x, None, State(h[:1], None if c is None else c[:1]))
        context, weights = self.attention.read(below.output, state.memory, bias)
        lower = dropout(below.output, self.upper_dropout, self.training)  # as between layers
        above = self.upper(torch.cat([lower, context], -1), None,
                           State(h[1:], None if c is None else c[1:]))
        rnn = State(torch.cat([below.state.h, above.state.h]),
                    None if c is None else torch.cat([below.state.c, above.state.c]))
        return self.attention.combine(context, above.output), state._replace(rnn=rnn), weights

    def _fed(self, x: Tensor, state: DecoderState, bias: Tensor | None
             ) -> tuple[Tensor, DecoderState, Tensor]:
        """Input feeding (Luong et al. 2015): step t reads [x_t; h~_{t-1}], one step at a time."""
        rnn_state, feed = state.rnn, state.feed
        hidden, weights = [], []
        for t, x_t in enumerate(x.unbind(1)):  # (B, E)
            out = self.rnn(torch.cat([x_t, feed], -1)[:, None], None, rnn_state)
            attended = self.attention(out.output, state.memory,  # (B, 1, H_out), (B, 1, S)
                                      None if bias is None else bias[:, t:t + 1])
            rnn_state, feed = out.state, attended.hidden[:, 0]
            hidden.append(attended.hidden)
            weights.append(attended.weights)
        return torch.cat(hidden, 1), state._replace(rnn=rnn_state, feed=feed), torch.cat(weights, 1)


class Seq2Seq(nn.Module):
    """Encoder RNN -> bridge -> teacher-forced decoder RNN -> vocabulary logits.

    Holds and runs its three parts, registered under their scope names; built from a config by
    ``qa_seq2seq.network.builder.build_network``, which checks the options and ties shared scopes.

    Args:
        encoder, bridge, decoder: the parts.
        scopes: ``{"encoder"|"bridge"|"decoder": name}``, the names the parts' parameters live
            under; each part keeps its default name unless given one.
        feed_final_state: also feed the encoder's final top-layer ``h`` to every decoder step
            (``feed_encoder_state=final``; the decoder's input size must allow for it).
    """

    def __init__(self, encoder: Encoder, bridge: Bridge, decoder: Decoder,
                 scopes: Mapping[str, str] | None = None, feed_final_state: bool = False):
        super().__init__()
        self.scopes = scope_names(scopes or {})
        for part, module in zip(SCOPES, (encoder, bridge, decoder)):
            self._modules[self.scopes[part]] = module  # add_module would trip over the properties
        self.vocab_size = decoder.output.out_features
        self.feed_final_state = feed_final_state

    # The parts under their scope names (registered as submodules under those names).
    @property
    def encoder(self) -> Encoder:
        return self._modules[self.scopes["encoder"]]

    @property
    def bridge(self) -> Bridge:
        return self._modules[self.scopes["bridge"]]

    @property
    def decoder(self) -> Decoder:
        return self._modules[self.scopes["decoder"]]

    # ----- training ---------------------------------------------------------------------------
    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor,
                initial_state: State | None = None, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher forcing: src (B, S), src_lengths (B,), tgt_in (B, T) = ``<bos> answer``.

        ``initial_state`` (L, B, H) replaces the bridged encoder state (thinking steps, if any,
        start from it). ``teacher_forcing`` < 1 is scheduled sampling (Bengio et al. 2015): each
        step after the first reads the gold token with that probability, else the model's own
        most likely token from the step before. Returns logits (B, T, V).

        The decoder draws one recurrent-dropout mask per sequence, for the thinking steps and
        the answer together, however many calls they take.
        """
        state = self._start(src, src_lengths, initial_state)
        with self.decoder.one_dropout_mask():
            state = self.decoder.think(state)
            if teacher_forcing >= 1.0:
                return self.decoder(tgt_in, state).logits
            return self._scheduled_sampling(tgt_in, state, teacher_forcing)

    def _scheduled_sampling(self, tgt_in: Tensor, state: DecoderState, p: float) -> Tensor:
        logits, token = [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            if t:
                gold = torch.rand(token.shape, device=token.device) < p
                token = torch.where(gold, tgt_in[:, t], logits[-1][:, 0].argmax(-1))
            out = self.decoder(token[:, None], state)
            logits.append(out.logits)
            state = out.state
        return torch.cat(logits, 1)  # (B, T, V)

    def read(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> DecoderOutput:
        """One teacher-forced pass that keeps what the decoder looked at: logits (B, T, V),
        attention weights (B, T, S) and copy switch (B, T), where the network has them."""
        return self.decoder(tgt_in, self.encode(src, src_lengths))

    def attention_weights(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor | None:
        """Where each answer position looked: (B, T, S) for tgt_in (B, T), None without attention.

        Decoding is deterministic given the prefix, so for a searched answer these are exactly
        the weights the search saw.
        """
        return self.read(src, src_lengths, tgt_in).attention

    # ----- the search contract ----------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor,
               initial_state: State | None = None) -> DecoderState:
        """Run the encoder (and the thinking steps) once: src (B, S), src_lengths (B,) -> the
        decoder's state before ``<bos>``. ``initial_state`` (L, B, H) replaces the bridged
        encoder state; the thinking steps, if any, start from it."""
        return self.decoder.think(self._start(src, src_lengths, initial_state))

    def _start(self, src: Tensor, src_lengths: Tensor,
               initial_state: State | None = None) -> DecoderState:
        """The encoder's part of ``encode``: the decoder's state before the thinking steps."""
        encoded = self.encoder(src, src_lengths)
        context = None  # (B, C)
        if self.decoder.pooling is not None:
            context = self.decoder.pooling(encoded.output, src_lengths)
        elif self.feed_final_state:
            context = encoded.state.h[-1]
        attention, memory, feed = self.decoder.attention, None, None
        if attention is not None:
            memory = attention.memory(encoded.output, src_lengths,
                                      src if self.decoder.copy is not None or
                                      self.decoder.span is not None else None)
        if self.decoder.input_feeding:
            feed = encoded.output.new_zeros(src.size(0), self.decoder.output.in_features)
        span = torch.zeros_like(src) if self.decoder.span is not None else None
        rnn = self.bridge(encoded.state) if initial_state is None else initial_state
        return DecoderState(rnn, context, memory, feed, span)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step: tokens (B,) -> logits (B, V) and the next state."""
        out = self.decoder(tokens[:, None], state)
        return out.logits[:, 0], out.state

    @staticmethod
    def reorder_state(state: DecoderState, order: Tensor) -> DecoderState:
        """Select/repeat batch rows: ``order`` (B',) indexes the batch dimension."""
        rnn = State(*(None if s is None else s.index_select(1, order) for s in state.rnn))
        context, feed, span = (None if x is None else x.index_select(0, order)
                               for x in (state.context, state.feed, state.span))
        memory = None if state.memory is None else reorder_memory(state.memory, order,
                                                                  state.rnn.h.size(1))
        return DecoderState(rnn, context, memory, feed, span)

    def bind_vocabulary(self, pieces: Sequence[str], reversed_source: bool = False) -> None:
        """Tell the parts that read token ids which piece each id is (the tokenizer's pieces,
        in id order): the digits and point of ``number_places``, the separator of
        ``match_separator``, the word boundaries of ``copy_span``. Called once by training;
        the buffers they set travel in checkpoints. ``reversed_source``: ``data.reverse_source``."""
        if (places := self.encoder.places) is not None:
            places.set_pieces(pieces, reversed_source)
        if (match := self.encoder.match) is not None:
            match.set_pieces(pieces, reversed_source)
        if (span := self.decoder.span) is not None:
            if reversed_source:
                raise ConfigError("model.net.copy_span=true follows the source left to right, and "
                                  "data.reverse_source=true reverses it: set one of them")
            span.set_pieces(pieces)


def reorder_memory(memory: Memory, order: Tensor, rows: int) -> Memory:
    """The attention memory for the rows ``order`` (B',) of a state of ``rows`` rows.

    The memory holds one row per question, each serving ``rows / questions`` consecutive state
    rows (see ``Attention.forward``). While the new rows still come in equal runs of one
    question (beam search keeps k rows a question), the memory keeps one row per run: copied
    only when questions leave, instead of k rows at every step. Otherwise, one row per row.
    """
    questions = order // (rows // memory.mask.size(0))  # the question of each new row
    runs, lengths = torch.unique_consecutive(questions, return_counts=True)
    if not bool((lengths == lengths[0]).all()):
        return memory.index_select(0, questions)
    same = torch.arange(memory.mask.size(0), device=runs.device)
    if len(runs) == len(same) and bool((runs == same).all()):
        return memory  # the same questions in the same order
    return memory.index_select(0, runs)


def merge_directions(state: State, directions: int) -> EncoderState:
    """torch layout (L*D, B, H) -> the encoder's (L, B, D*H), directions side by side."""
    if directions == 1:
        return EncoderState(*state)

    def merge(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        layers_dirs, batch, size = x.shape
        x = x.view(layers_dirs // directions, directions, batch, size)
        return x.permute(0, 2, 1, 3).reshape(layers_dirs // directions, batch, directions * size)

    return EncoderState(merge(state.h), merge(state.c))


def scope_names(given: Mapping[str, str]) -> dict[str, str]:
    """``{part: name}`` for the three parts; names must be distinct identifiers and not another
    attribute of the network (``forward``, ``encode``, ``training``...)."""
    if unknown := sorted(set(given) - set(SCOPES)):
        raise ConfigError(f"model.net.scopes.{unknown[0]}: no such part; the parts are "
                          f"{', '.join(SCOPES)}")
    names = {part: part if given.get(part) is None else given[part] for part in SCOPES}
    for part, name in names.items():
        if not (isinstance(name, str) and name.isidentifier()) or (
                name not in SCOPES and _taken(name)):
            raise ConfigError(f"model.net.scopes.{part}={name!r}: a scope name must be a Python "
                              "identifier (letters, digits, _; no dots) and not an attribute of the "
                              "network (forward, encode, training...), e.g. question_encoder")
    if len(set(names.values())) < len(names):
        raise ConfigError(f"model.net.scopes: two parts share a name ({names}); give each its own")
    return names



def _taken(name: str) -> bool:
    """A name the network already has: a method or property of Seq2Seq, or a Module attribute."""
    return hasattr(Seq2Seq, name) or hasattr(nn.Module(), name)
