"""Weight sharing between scopes (``model/net/sharing=``), applied once after construction.

- ``embeddings``: the decoder uses the encoder's embedding table;
- ``tied_output``: the decoder's output layer uses the decoder embedding as its weight
  (Press & Wolf 2017); needs ``embedding_size`` equal to the decoder's output size;
- ``encoder_decoder``: encoder and decoder run the same RNN module (same class, sizes and input
  size; the encoder unidirectional, no ``feed_encoder_state``).

Shared tensors are the same object: ``model.parameters()`` yields them once, so the optimizer
updates them once, and ``torch.save`` stores them once.
"""

from __future__ import annotations

from torch import nn

from qa_seq2seq.errors import ConfigError


class Sharing:
    """Which weights the scopes share (``model.net.sharing``), tied after the network is built."""
    def __init__(self, embeddings: bool = False, tied_output: bool = False,
                 encoder_decoder: bool = False):
        self.embeddings, self.tied_output, self.encoder_decoder = (
            embeddings, tied_output, encoder_decoder)

    def __repr__(self) -> str:
        on = [k for k in ("embeddings", "tied_output", "encoder_decoder") if getattr(self, k)]
        return f"Sharing({', '.join(on) or 'none'})"

    def apply(self, model: nn.Module) -> None:
        """Tie the chosen scopes of ``model`` (a ``Seq2Seq``: its ``encoder`` and ``decoder``)
        in place; raise on incompatible sizes or cells."""
        encoder, decoder = model.encoder, model.decoder
        if self.embeddings:
            decoder.embedding = encoder.embedding
        if self.tied_output:
            emb, out = decoder.embedding.weight, decoder.output.weight
            if emb.shape != out.shape:
                choice = "all" if self.embeddings else "tied_output"  # conf/model/net/sharing/
                raise ConfigError(
                    f"model/net/sharing={choice} ties the output layer to the embedding, so it "
                    f"needs model.net.embedding_size ({emb.shape[1]}) equal to the decoder's "
                    f"output size ({out.shape[1]}: its hidden_size, or proj_size)."
                    f" Set model.net.embedding_size={out.shape[1]} or choose another model/net/sharing."
                )
            decoder.output.weight = decoder.embedding.weight
        if self.encoder_decoder:
            if decoder.upper is not None:
                raise ConfigError("model/net/sharing=encoder_decoder runs one RNN on both sides, "
                                  "and model.net.attend_from=bottom splits the decoder's in two "
                                  "(the layers above the bottom one read the attention): choose "
                                  "one")
            enc, dec = encoder.rnn, decoder.rnn
            mismatches = [
                f"{what}: encoder {a} vs decoder {b}"
                for what, a, b in (
                    ("cell", type(enc).__name__, type(dec).__name__),
                    ("input_size", enc.input_size, dec.input_size),
                    ("hidden_size", enc.hidden_size, dec.hidden_size),
                    ("num_layers", enc.num_layers, dec.num_layers),
                    ("bidirectional", enc.bidirectional, dec.bidirectional),
                    ("proj_size", enc.proj_size, dec.proj_size),  # every torch RNN has one
                )
                if a != b
            ]
            if mismatches:
                raise ConfigError(
                    "model/net/sharing=encoder_decoder runs one RNN on both sides, but they differ: "
                    + "; ".join(mismatches)
                    + ". Use the same model/net/cell for both, model.net.bidirectional_encoder=false and "
                    "model.net.feed_encoder_state=false, or choose another model/net/sharing."
                )
            decoder.rnn = enc
