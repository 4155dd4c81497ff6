"""Building the network from its configuration: ``build_network`` is ``model.net``'s target.

It checks the options together (an attention for copy or input feeding, two decoder layers for
``attend_from=bottom``...), builds the encoder, bridge and decoder with each RNN named after its
scope, ties the shared scopes, and returns the plain :class:`qa_seq2seq.network.model.Seq2Seq`, which
only holds and runs its parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from torch import nn

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.attention import Pooling, SelfAttention
from qa_seq2seq.network.bridge import Bridge, Side
from qa_seq2seq.network.matching import SourceMatch
from qa_seq2seq.network.model import Decoder, Encoder, Seq2Seq, scope_names
from qa_seq2seq.network.places import NumberPlaces
from qa_seq2seq.network.pointer import CopyGenerator
from qa_seq2seq.network.rnn import Recurrent
from qa_seq2seq.network.spans import SpanFollowing

if TYPE_CHECKING:
    from qa_seq2seq.network.attention import Attention
    from qa_seq2seq.network.sharing import Sharing

RNNFactory = Callable[..., Recurrent]
SUMMARIES = ("none", "final", "pooled")  # what feed_encoder_state feeds to every decoder step


def build_network(
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
        number_values: bool = False,
        match_separator: str | None = None,
        match_words: int = 0,
        match_pooling: bool = False,
        dropout: float = 0.0,
        copy: bool = False,
        copy_span: bool = False,
        self_attention_layers: int = 0,
        self_attention_heads: int = 4,
        sharing: Sharing | None = None,
        scopes: Mapping[str, str] | None = None,
) -> Seq2Seq:
    """The network a config describes (``model.net``, ``conf/model/net/seq2seq.yaml``): its
    cells, sizes and options checked, its parts built, then the scopes tied. Errors name the
    argument as the config does (``model.net.copy=true ...``).

    Args:
        vocab_size: shared source/target vocabulary (the tokenizer's).
        cell: factory for both RNNs (a Hydra ``_partial_`` of a ``qa_seq2seq.network.rnn`` class);
            ``encoder_cell`` / ``decoder_cell`` replace it for one side.
        embedding_size, hidden_size, num_layers: sizes; a cell config's own non-null
            ``hidden_size`` / ``num_layers`` win over these.
        bidirectional_encoder: run the encoder both ways (its state size doubles).
        bridge: ``state`` | ``hidden_only`` | ``linear`` | ``none`` (see ``qa_seq2seq.network.bridge``).
        feed_encoder_state: also concatenate a summary of the question to every decoder input:
            ``final`` (or True) the encoder's final top-layer ``h`` (Cho et al. 2014), ``pooled``
            the self-attentive pooling of the encoder outputs (``attention.Pooling``), ``none``
            (or False) nothing.
        attention: factory for the decoder's attention over the encoder outputs (a ``_partial_``
            of ``qa_seq2seq.network.attention.Attention``), or None (``model/net/attention=none``).
        input_feeding: feed the previous attentional vector into each decoder step (needs
            attention); the decoder then runs step by step in training too.
        attend_from: which decoder layer's outputs query the attention: ``top`` (Luong et al.
            2015: after the RNN) or ``bottom`` (Wu et al. 2016: the layers above read the
            bottom layer's context at every step, so they see the question where it looked;
            each part still one fused call). Parameters of the layers above the bottom one:
            ``decoder.upper.*``.
        thinking_steps: decoder steps run on a learned input before ``<bos>``, without output.
        number_places: add a place-value embedding to each digit of the question (units,
            tens, tenths...; ``qa_seq2seq.network.places``); training tells it the digit pieces.
        number_values: with ``number_places``, add a learned function of each number's size
            (log and leading digits) to its digits, so comparing two numbers is reading a
            direction.
        match_separator: a piece splitting the source into sides (question ``<sep>`` passage):
            each piece that also occurs on another side gets a learned match embedding (DrQA's
            exact-match feature; ``qa_seq2seq.network.matching``); training finds the piece's id.
        match_words: with ``match_separator``, a passage piece found in the question also says
            which of the question's first ``match_words`` words it matches (0: only that it does).
        match_pooling: with ``match_words``, add to each piece of a question word and of its
            passage matches a learned map of the mean encoder output over all of them.
        dropout: on embeddings and on the decoder output before the vocabulary projection.
        copy: copy attention (See et al. 2017; needs ``attention``): each step's distribution
            mixes generating from the vocabulary with copying a source token through the
            attention weights (``qa_seq2seq.network.pointer``).
        copy_span: copying continues a span (needs ``copy``): each step's attention and input
            know which source span the answer so far ends with (``qa_seq2seq.network.spans``);
            training tells it which pieces continue a word.
        self_attention_layers, self_attention_heads: transformer layers (of that many heads)
            over the encoder's outputs, so facts of different sentences meet before the decoder
            reads them (``qa_seq2seq.network.attention.SelfAttention``); 0: none.
        sharing: ties scopes after construction (``qa_seq2seq.network.sharing``).
        scopes: ``{"encoder"|"bridge"|"decoder": name}``, the names the parts' parameters live
            under; each part keeps its default name unless given one.
    """
    names = scope_names(scopes or {})
    sizes = {"hidden_size": hidden_size, "num_layers": num_layers}
    enc_rnn = _make_rnn(encoder_cell or cell, names["encoder"], embedding_size, sizes,
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
    if number_values and not number_places:
        raise ConfigError("model.net.number_values=true adds each number's size to the place "
                          "embeddings of its digits: set model.net.number_places=true too")
    if (match_words or match_pooling) and not match_separator:
        raise ConfigError("model.net.match_words and match_pooling follow the question words a "
                          "passage piece matches: set model.net.match_separator (e.g. '<sep>') too")
    if copy_span and not copy:
        raise ConfigError("model.net.copy_span=true continues the span copy attention copies: "
                          "set model.net.copy=true too")
    if self_attention_layers < 0:
        raise ConfigError(f"model.net.self_attention_layers must be >= 0, got "
                          f"{self_attention_layers}")
    if thinking_steps < 0:
        raise ConfigError(f"model.net.thinking_steps must be >= 0, got {thinking_steps}")
    summary = _summary(feed_encoder_state)
    context_size = 0 if summary == "none" else enc_side.h_size
    feed_size = _output_size(decoder_cell or cell, sizes) if input_feeding else 0
    dec_factory, upper, upper_dropout = decoder_cell or cell, None, 0.0
    dec_input = embedding_size + context_size + feed_size
    if attend_from not in ("top", "bottom"):
        raise ConfigError(f"model.net.attend_from={attend_from!r}: use top or bottom")
    if attend_from == "top":
        dec_rnn = _make_rnn(dec_factory, names["decoder"], dec_input, sizes)
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
        dec_rnn = _make_rnn(dec_factory, names["decoder"], dec_input, sizes,
                            num_layers=1, dropout=0.0)
        upper = _make_rnn(dec_factory, names["decoder"] + "_upper",
                          dec_rnn.output_size + enc_side.h_size, sizes, num_layers=layers - 1,
                          dropout=upper_dropout if layers > 2 else 0.0)
    if dec_rnn.bidirectional:
        raise ConfigError("the decoder cannot be bidirectional: set the decoder cell's "
                         "bidirectional=false (use model.net.bidirectional_encoder for the encoder)")
    dec_side = Side(dec_rnn.num_layers + (upper.num_layers if upper else 0),
                    dec_rnn.output_size, dec_rnn.hidden_size if dec_rnn.has_cell_state else None)

    encoder = Encoder(
        nn.Embedding(vocab_size, embedding_size), enc_rnn, dropout=dropout,
        places=NumberPlaces(vocab_size, embedding_size, values=number_values)
        if number_places else None,
        match=SourceMatch(vocab_size, embedding_size, match_separator, words=match_words,
                          pool_size=enc_side.h_size if match_pooling else None)
        if match_separator else None,
        self_attention=SelfAttention(enc_side.h_size, self_attention_layers,
                                     self_attention_heads, dropout)
        if self_attention_layers else None)
    decoder = Decoder(
        nn.Embedding(vocab_size, embedding_size), dec_rnn, nn.Linear(dec_side.h_size, vocab_size),
        dropout=dropout,
        attention=attention(query_size=dec_side.h_size, memory_size=enc_side.h_size)
        if attention else None,
        input_feeding=input_feeding, thinking_steps=thinking_steps,
        pooling=Pooling(enc_side.h_size) if summary == "pooled" else None,
        upper=upper, upper_dropout=upper_dropout,
        copy=CopyGenerator(dec_side.h_size, embedding_size) if copy else None,
        span=SpanFollowing(vocab_size, embedding_size) if copy_span else None)
    net = Seq2Seq(encoder, Bridge(bridge, enc_side, dec_side), decoder, names,
                  feed_final_state=summary == "final")
    if sharing is not None:
        sharing.apply(net)
    return net


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
