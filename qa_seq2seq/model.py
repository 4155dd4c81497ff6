"""The sequence-to-sequence network: embeddings, a many-to-one encoder, a bridge, a decoder.

Parameter scopes (stable names, used by config globs, ``inspect`` and checkpoints)::

    encoder.embedding.weight          (V, E)
    encoder.places.embedding.weight   (2 x max_place + 1, E): only with model.net.number_places
    encoder.match.embedding.weight    (2, E): only with model.net.match_separator
    encoder.rnn.weight_ih_l0 ...      the encoder RNN, torch's names
    bridge.h.weight ...               only with model.net.bridge=linear
    decoder.embedding.weight          (V, E)
    decoder.rnn.weight_hh_l1 ...      the decoder RNN
    decoder.output.weight, .bias      (V, H_dec)
    decoder.attention.out.weight ...  only with model/net/attention (see qa_seq2seq.attention)
    decoder.thinking                  (E,): only with model.net.thinking_steps > 0
    decoder.pooling.key.weight ...    only with model.net.feed_encoder_state=pooled
    decoder.copy.switch.weight, .bias only with model.net.copy (see qa_seq2seq.pointer)

``encoder``, ``bridge`` and ``decoder`` are the default names of the three scopes; ``scopes``
renames them (``{"encoder": "question_encoder"}`` gives ``question_encoder.rnn.weight_ih_l0``).

The network is architecture only: construction builds the modules and ties the shared ones, and
never reads a file. How training initialises, warm-starts and freezes it is the LightningModule's
business (``qa_seq2seq.module``). The search algorithms talk to the network through ``encode``,
``step`` and ``reorder_state`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from qa_seq2seq.attention import Attention, Memory, Pooling
from qa_seq2seq.bridge import Bridge, EncoderState, Side
from qa_seq2seq.dropout import Dropout, dropout
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.matching import SourceMatch
from qa_seq2seq.places import NumberPlaces
from qa_seq2seq.pointer import CopyGenerator
from qa_seq2seq.rnn import Recurrent, State

if TYPE_CHECKING:
    from qa_seq2seq.sharing import Sharing

RNNFactory = Callable[..., Recurrent]
SCOPES = ("encoder", "bridge", "decoder")
SUMMARIES = ("none", "final", "pooled")  # what feed_encoder_state feeds to every decoder step


class EncoderOutput(NamedTuple):
    output: Tensor  # (B, S, D*H_out), zeros at padding
    state: EncoderState  # (L, B, D*H_out) and (L, B, D*H): at each question's true length


class DecoderState(NamedTuple):
    """Everything the decoder carries from one step to the next."""

    rnn: State  # (L, B, H_out), (L, B, H)
    context: Tensor | None = None  # (B, C): encoder summary fed at every step (feed_encoder_state)
    memory: Memory | None = None  # the encoder outputs, for attention
    feed: Tensor | None = None  # (B, H_out): the last attentional vector (input feeding)


class DecoderOutput(NamedTuple):
    logits: Tensor  # (B, T, V); with copy attention, log-probabilities (qa_seq2seq.pointer)
    state: DecoderState  # after the last step
    attention: Tensor | None  # (B, T, S) weights over the source, or None without attention


class Encoder(nn.Module):
    """Embeds a right-padded question and runs the RNN over it; many-to-one. ``places`` adds
    each digit's place-value embedding to its token embedding (``qa_seq2seq.places``), ``match``
    the embedding of whether a piece occurs on both sides of a separator (``qa_seq2seq.matching``).
    """

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, dropout: float = 0.0,
                 places: NumberPlaces | None = None, match: SourceMatch | None = None):
        super().__init__()
        self.embedding, self.rnn, self.dropout = embedding, rnn, Dropout(dropout)
        self.places, self.match = places, match

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src (B, S) token ids, lengths (B,) -> final state at each true length."""
        x = self.embedding(src)  # (B, S, E)
        if self.places is not None:
            x = x + self.places(src, lengths)
        if self.match is not None:
            x = x + self.match(src, lengths)
        out = self.rnn(self.dropout(x), lengths)
        return EncoderOutput(out.output, merge_directions(out.state, self.rnn.num_directions))


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
    ``qa_seq2seq.pointer``).
    """

    def __init__(self, embedding: nn.Embedding, rnn: Recurrent, output: nn.Linear,
                 dropout: float = 0.0, attention: Attention | None = None,
                 input_feeding: bool = False, thinking_steps: int = 0,
                 pooling: Pooling | None = None, upper: Recurrent | None = None,
                 upper_dropout: float = 0.0, copy: CopyGenerator | None = None):
        super().__init__()
        self.embedding, self.rnn, self.output, self.copy = embedding, rnn, output, copy
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
        hidden, state, weights = self._hidden(inputs, state)
        logits = self.output(self.dropout(hidden))
        if self.copy is not None:  # log-probabilities, which the loss and searches read as logits
            logits = self.copy(logits, hidden, inputs, weights, state.memory.ids)
        return DecoderOutput(logits, state, weights)

    def think(self, state: DecoderState) -> DecoderState:
        """Run the thinking steps from ``state`` (no outputs, so no loss and nothing emitted)."""
        if not self.thinking_steps:
            return state
        x = self.thinking.expand(state.rnn.h.size(1), self.thinking_steps, -1)  # (B, N, E)
        return self._hidden(x, state)[1]

    def _hidden(self, x: Tensor, state: DecoderState
                ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """x (B, T, E) inputs -> the top outputs (B, T, H_out), the new state, attention."""
        if state.context is not None:
            x = torch.cat([x, state.context[:, None].expand(-1, x.size(1), -1)], -1)
        if self.input_feeding:
            return self._fed(x, state)
        if self.upper is not None:
            return self._from_bottom(x, state)
        out = self.rnn(x, None, state.rnn)  # the whole answer in one (fused) call
        if self.attention is None:
            return out.output, state._replace(rnn=out.state), None
        attended = self.attention(out.output, state.memory)  # one batched matmul for all steps
        return attended.hidden, state._replace(rnn=out.state), attended.weights

    def _from_bottom(self, x: Tensor, state: DecoderState
                     ) -> tuple[Tensor, DecoderState, Tensor]:
        """``attend_from=bottom`` (Wu et al. 2016): the bottom layer's outputs query the
        attention, and the layers above read [h_t; context_t], so every step of them sees the
        question where it looked; one fused call per part, as without attention."""
        h, c = state.rnn
        below = self.rnn(x, None, State(h[:1], None if c is None else c[:1]))
        context, weights = self.attention.read(below.output, state.memory)
        lower = dropout(below.output, self.upper_dropout, self.training)  # as between layers
        above = self.upper(torch.cat([lower, context], -1), None,
                           State(h[1:], None if c is None else c[1:]))
        rnn = State(torch.cat([below.state.h, above.state.h]),
                    None if c is None else torch.cat([below.state.c, above.state.c]))
        return self.attention.combine(context, above.output), state._replace(rnn=rnn), weights

    def _fed(self, x: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor]:
        """Input feeding (Luong et al. 2015): step t reads [x_t; h~_{t-1}], one step at a time."""
        rnn_state, feed = state.rnn, state.feed
        hidden, weights = [], []
        for x_t in x.unbind(1):  # (B, E)
            out = self.rnn(torch.cat([x_t, feed], -1)[:, None], None, rnn_state)
            attended = self.attention(out.output, state.memory)  # (B, 1, H_out), (B, 1, S)
            rnn_state, feed = out.state, attended.hidden[:, 0]
            hidden.append(attended.hidden)
            weights.append(attended.weights)
        return torch.cat(hidden, 1), state._replace(rnn=rnn_state, feed=feed), torch.cat(weights, 1)


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
        feed_encoder_state: also concatenate a summary of the question to every decoder input:
            ``final`` (or True) the encoder's final top-layer ``h`` (Cho et al. 2014), ``pooled``
            the self-attentive pooling of the encoder outputs (``attention.Pooling``), ``none``
            (or False) nothing.
        attention: factory for the decoder's attention over the encoder outputs (a ``_partial_``
            of ``qa_seq2seq.attention.Attention``), or None (``model/net/attention=none``).
        input_feeding: feed the previous attentional vector into each decoder step (needs
            attention); the decoder then runs step by step in training too.
        attend_from: which decoder layer's outputs query the attention: ``top`` (Luong et al.
            2015: after the RNN) or ``bottom`` (Wu et al. 2016: the layers above read the
            bottom layer's context at every step, so they see the question where it looked;
            each part still one fused call). Parameters of the layers above the bottom one:
            ``decoder.upper.*``.
        thinking_steps: decoder steps run on a learned input before ``<bos>``, without output.
        number_places: add a place-value embedding to each digit of the question (units,
            tens, tenths...; ``qa_seq2seq.places``); training tells it the digit pieces.
        match_separator: a piece splitting the source into sides (question ``<sep>`` passage):
            each piece that also occurs on another side gets a learned match embedding (DrQA's
            exact-match feature; ``qa_seq2seq.matching``); training finds the piece's id.
        dropout: on embeddings and on the decoder output before the vocabulary projection.
        copy: copy attention (See et al. 2017; needs ``attention``): each step's distribution
            mixes generating from the vocabulary with copying a source token through the
            attention weights (``qa_seq2seq.pointer``).
        sharing: ties scopes after construction (``qa_seq2seq.sharing``).
        scopes: ``{"encoder"|"bridge"|"decoder": name}``, the names the parts' parameters live
            under; each part keeps its default name unless given one.
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
        feed_encoder_state: bool | str = False,
        attention: Callable[..., Attention] | None = None,
        input_feeding: bool = False,
        attend_from: str = "top",
        thinking_steps: int = 0,
        number_places: bool = False,
        match_separator: str | None = None,
        dropout: float = 0.0,
        copy: bool = False,
        sharing: Sharing | None = None,
        scopes: Mapping[str, str] | None = None,
    ):
        super().__init__()
        self.scopes = _scope_names(scopes or {}, taken=lambda name: hasattr(self, name))
        sizes = {"hidden_size": hidden_size, "num_layers": num_layers}
        enc_rnn = _make_rnn(encoder_cell or cell, self.scopes["encoder"], embedding_size, sizes,
                            bidirectional=bidirectional_encoder)
        directions = enc_rnn.num_directions
        enc_side = Side(enc_rnn.num_layers, directions * enc_rnn.output_size,
                        directions * enc_rnn.hidden_size if enc_rnn.has_cell_state else None)
        if input_feeding and not attention:
            raise ConfigError("model.net.input_feeding=true feeds the attentional vector back into the "
                              "decoder: choose an attention (model/net/attention=dot|general|bahdanau)")
        if copy and not attention:
            raise ConfigError("model.net.copy=true copies source tokens through the attention "
                              "weights: choose an attention (model/net/attention=dot|general|"
                              "bahdanau)")
        if thinking_steps < 0:
            raise ConfigError(f"model.net.thinking_steps must be >= 0, got {thinking_steps}")
        summary = _summary(feed_encoder_state)
        self.context_size = 0 if summary == "none" else enc_side.h_size
        feed_size = _output_size(decoder_cell or cell, sizes) if input_feeding else 0
        dec_factory, upper, upper_dropout = decoder_cell or cell, None, 0.0
        dec_input = embedding_size + self.context_size + feed_size
        if attend_from not in ("top", "bottom"):
            raise ConfigError(f"model.net.attend_from={attend_from!r}: use top or bottom")
        if attend_from == "top":
            dec_rnn = _make_rnn(dec_factory, self.scopes["decoder"], dec_input, sizes)
        else:  # the bottom layer alone, then the layers above it
            own = _own(dec_factory)
            layers = own.get("num_layers") or num_layers
            for wrong, message in (
                    (not attention, "queries the attention with the decoder's bottom layer: "
                                    "choose one (model/net/attention=dot|general|bahdanau)"),
                    (input_feeding, "with model.net.input_feeding=true already feeds every "
                                    "layer the attention: set one of them"),
                    (layers < 2, f"needs a decoder of 2 or more layers (it has {layers}): the "
                                 "layers above the bottom one read its attention")):
                if wrong:
                    raise ConfigError(f"model.net.attend_from=bottom {message}")
            # The cell's dropout between layers goes between the two parts too (the Decoder's).
            upper_dropout = own.get("dropout") or 0.0
            dec_rnn = _make_rnn(dec_factory, self.scopes["decoder"], dec_input, sizes,
                                num_layers=1, dropout=0.0)
            upper = _make_rnn(dec_factory, self.scopes["decoder"] + "_upper",
                              dec_rnn.output_size + enc_side.h_size, sizes, num_layers=layers - 1,
                              dropout=upper_dropout if layers > 2 else 0.0)
        if dec_rnn.bidirectional:
            raise ConfigError("the decoder cannot be bidirectional: set the decoder cell's "
                             "bidirectional=false (use model.net.bidirectional_encoder for the encoder)")
        dec_side = Side(dec_rnn.num_layers + (upper.num_layers if upper else 0),
                        dec_rnn.output_size, dec_rnn.hidden_size if dec_rnn.has_cell_state else None)

        parts = {
            "encoder": Encoder(nn.Embedding(vocab_size, embedding_size), enc_rnn, dropout,
                               NumberPlaces(vocab_size, embedding_size) if number_places else None,
                               SourceMatch(embedding_size, match_separator) if match_separator
                               else None),
            "bridge": Bridge(bridge, enc_side, dec_side),
            "decoder": Decoder(
                nn.Embedding(vocab_size, embedding_size), dec_rnn,
                nn.Linear(dec_side.h_size, vocab_size), dropout,
                attention(query_size=dec_side.h_size, memory_size=enc_side.h_size) if attention
                else None, input_feeding, thinking_steps,
                Pooling(enc_side.h_size) if summary == "pooled" else None, upper,
                upper_dropout, CopyGenerator(dec_side.h_size, embedding_size) if copy else None),
        }
        for part, module in parts.items():  # add_module would trip over the part properties
            self._modules[self.scopes[part]] = module
        self.vocab_size = vocab_size
        if sharing is not None:
            sharing.apply(self)

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
        """
        state = self.encode(src, src_lengths, initial_state)
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

    def attention_weights(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor | None:
        """Where each answer position looked: (B, T, S) for tgt_in (B, T), None without attention.

        Decoding is deterministic given the prefix, so for a searched answer these are exactly
        the weights the search saw.
        """
        return self.decoder(tgt_in, self.encode(src, src_lengths)).attention

    # ----- the search contract ----------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor,
               initial_state: State | None = None) -> DecoderState:
        """Run the encoder (and the thinking steps) once: src (B, S), src_lengths (B,) -> the
        decoder's state before ``<bos>``. ``initial_state`` (L, B, H) replaces the bridged
        encoder state; the thinking steps, if any, start from it."""
        state = self._start(src, src_lengths)
        if initial_state is not None:
            state = state._replace(rnn=initial_state)
        return self.decoder.think(state)

    def _start(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        encoded = self.encoder(src, src_lengths)
        context = None  # (B, C)
        if self.decoder.pooling is not None:
            context = self.decoder.pooling(encoded.output, src_lengths)
        elif self.context_size:
            context = encoded.state.h[-1]
        attention, memory, feed = self.decoder.attention, None, None
        if attention is not None:
            memory = attention.memory(encoded.output, src_lengths,
                                      src if self.decoder.copy is not None else None)
        if self.decoder.input_feeding:
            feed = encoded.output.new_zeros(src.size(0), self.decoder.output.in_features)
        return DecoderState(self.bridge(encoded.state), context, memory, feed)

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step: tokens (B,) -> logits (B, V) and the next state."""
        out = self.decoder(tokens[:, None], state)
        return out.logits[:, 0], out.state

    @staticmethod
    def reorder_state(state: DecoderState, order: Tensor) -> DecoderState:
        """Select/repeat batch rows: ``order`` (B',) indexes the batch dimension."""
        rnn = State(*(None if s is None else s.index_select(1, order) for s in state.rnn))
        context, feed = (None if x is None else x.index_select(0, order)
                         for x in (state.context, state.feed))
        memory = None if state.memory is None else reorder_memory(state.memory, order,
                                                                  state.rnn.h.size(1))
        return DecoderState(rnn, context, memory, feed)


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


def _scope_names(given: Mapping[str, str], taken: Callable[[str], bool]) -> dict[str, str]:
    """``{part: name}`` for the three parts; names must be distinct identifiers and not
    ``taken`` by another attribute of the network (``forward``, ``encode``, ``training``...)."""
    if unknown := sorted(set(given) - set(SCOPES)):
        raise ConfigError(f"model.net.scopes.{unknown[0]}: no such part; the parts are "
                          f"{', '.join(SCOPES)}")
    names = {part: given.get(part) or part for part in SCOPES}
    for part, name in names.items():
        if not (isinstance(name, str) and name.isidentifier()) or (
                name not in SCOPES and taken(name)):
            raise ConfigError(f"model.net.scopes.{part}={name!r}: a scope name must be a Python "
                              "identifier (letters, digits, _; no dots) and not an attribute of the "
                              "network (forward, encode, training...), e.g. question_encoder")
    if len(set(names.values())) < len(names):
        raise ConfigError(f"model.net.scopes: two parts share a name ({names}); give each its own")
    return names


def _summary(feed_encoder_state: bool | str) -> str:
    """model.net.feed_encoder_state -> one of SUMMARIES (true/false are final/none)."""
    if isinstance(feed_encoder_state, bool):
        return "final" if feed_encoder_state else "none"
    if feed_encoder_state not in SUMMARIES:
        raise ConfigError(f"model.net.feed_encoder_state={feed_encoder_state!r}: use one of "
                          f"{', '.join(SUMMARIES)} (true = final, false = none)")
    return feed_encoder_state


def _own(factory: RNNFactory) -> dict:
    """The options a cell config sets itself (a Hydra ``_partial_``'s keywords), which win over
    the network's sizes."""
    return getattr(factory, "keywords", {})


def _output_size(factory: RNNFactory, sizes: dict[str, int]) -> int:
    """The size of ``h`` an RNN from ``factory`` will have: its ``proj_size``, else hidden size."""
    own = _own(factory)
    return own.get("proj_size") or own.get("hidden_size") or sizes["hidden_size"]


def _make_rnn(factory: RNNFactory, name: str, input_size: int, sizes: dict[str, int],
              **kwargs) -> Recurrent:
    """Call a cell factory; its own non-null ``hidden_size``/``num_layers`` win over ``sizes``,
    and ``kwargs`` over both."""
    own = _own(factory)
    if "name" in own:  # the scope name is the model's to give: never accept and ignore it
        raise ConfigError(f"model cell name={own['name']!r}: an RNN is named after its scope "
                          f"({name!r} here); drop the cell's name key and set "
                          f"model.net.scopes.encoder=... or model.net.scopes.decoder=... instead")
    resolved = {key: own.get(key) or value for key, value in sizes.items()}
    return factory(input_size=input_size, name=name, **{**resolved, **kwargs})
