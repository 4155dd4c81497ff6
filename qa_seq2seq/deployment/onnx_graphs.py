"""A network as two ONNX graphs, for the torch-free runtime (``qa_seq2seq.deployment.runtime``).

RNN seq2seq models export well as the **encoder** and **one decoder step**, with the search loop
in host code: exactly the ``encode`` / ``step`` / ``reorder_state`` contract of ``Seq2Seq``.

    encoder.onnx   src (B, S) int64, src_lengths (B,) int64 -> the state before <bos>
    step.onnx      tokens (B,) int64, the state -> logits (B, V), the carried state after it

The decoder state travels as named tensors (only those the network has; ``STATE`` gives each
one's batch axis, which the runtime selects and repeats for the beam):

    h, c                       (L, B, H)   the decoder RNN's state (c: LSTM cells only)
    context                    (B, C)      the encoder summary (feed_encoder_state)
    memory_values / _keys      (B, S, M)   attention memory (see qa_seq2seq.network.attention.Memory)
    memory_mask                (B, S)      bool, True at real source tokens
    memory_ids                 (B, S)      int64, the source tokens (copy attention)
    feed                       (B, H)      the last attentional vector (input feeding)
    span                       (B, S)      int64, the source spans the answer ends with (copy_span)

A step changes ``CARRIED`` only; the rest are inputs of every step and pass through unchanged.

The custom cells (``peephole_lstm``, ``layernorm_lstm``) run a Python loop over time, which a
trace unrolls to the length it saw: their encoder is exported once per length bucket
(``encoder_S.onnx`` for S = 8, 16, 32, ... up to the model's longest question) and the runtime
pads each batch to its bucket (padding never changes the state: the loop keeps it there).
torch's fused kernels (``lstm``, ``gru``, ``rnn``) export with a dynamic length.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from qa_seq2seq.network.attention import Memory
from qa_seq2seq.network.model import DecoderState, Seq2Seq
from qa_seq2seq.network.rnn import State

STATE = {"h": 1, "c": 1, "context": 0, "memory_values": 0, "memory_keys": 0, "memory_mask": 0,
         "memory_ids": 0, "feed": 0, "span": 0}
CARRIED = ("h", "c", "feed", "span")
SMALLEST_BUCKET = 8


def flatten(state: DecoderState) -> dict[str, Tensor]:
    """The state's tensors by name (absent parts left out)."""
    memory = state.memory or Memory(None, None, None)
    named = {"h": state.rnn.h, "c": state.rnn.c, "context": state.context,
             "memory_values": memory.values, "memory_keys": memory.keys,
             "memory_mask": memory.mask, "memory_ids": memory.ids, "feed": state.feed,
             "span": state.span}
    return {name: tensor for name, tensor in named.items() if tensor is not None}


def unflatten(named: dict[str, Tensor]) -> DecoderState:
    """The decoder state from the named tensors of the ONNX graphs' inputs and outputs."""
    memory = None
    if "memory_values" in named:
        memory = Memory(named["memory_values"], named["memory_keys"], named["memory_mask"],
                        named.get("memory_ids"))
    return DecoderState(State(named["h"], named.get("c")), named.get("context"), memory,
                        named.get("feed"), named.get("span"))


class EncoderGraph(nn.Module):
    """``encode`` -> the state tensors ``names``, then the encoder outputs (B, S, D*H).

    The encoder outputs are an output of the graph even when nothing reads them: torch's
    exporter fails on a one-layer packed LSTM whose outputs go unused (torch 2.13). The runtime
    ignores them.
    """

    def __init__(self, net: Seq2Seq, names: list[str]):
        super().__init__()
        self.net, self.names = net, names

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        outputs = []
        hook = self.net.encoder.register_forward_hook(lambda _, __, out: outputs.append(out.output))
        try:
            state = flatten(self.net.encode(src, src_lengths))
        finally:
            hook.remove()
        return (*(state[name] for name in self.names), outputs[0])


class StepGraph(nn.Module):
    """One decoder step as a graph: tokens and the named state in, logits and the carried state out."""
    def __init__(self, net: Seq2Seq, names: list[str]):
        super().__init__()
        self.net, self.names = net, names
        self.carried = [name for name in names if name in CARRIED]

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, after = self.net.step(tokens, unflatten(dict(zip(self.names, state))))
        after = flatten(after)
        return (logits, *(after[name] for name in self.carried))


def buckets(max_length: int) -> list[int]:
    """Source lengths a loop-cell encoder is exported at: 8, 16, ... and ``max_length``."""
    lengths, size = [], SMALLEST_BUCKET
    while size < max_length:
        lengths.append(size)
        size *= 2
    return [*lengths, max_length]


def export_graphs(net: Seq2Seq, out: Path, max_source_length: int, opset: int = 17) -> dict:
    """Write ``encoder*.onnx`` and ``step.onnx`` of ``net`` (in eval mode) into ``out``;
    returns their description for ``model.json``."""
    net = net.eval()
    src = torch.full((3, 4), 4, dtype=torch.long)
    lengths = torch.tensor([4, 2, 1])  # unequal: the trace takes the padded (packed) path
    names = list(flatten(net.encode(src, lengths)))
    fused = not net.encoder.rnn.always_loop
    encoder_axes = {"src": {0: "batch", 1: "source"}, "src_lengths": {0: "batch"}}
    encoder_axes |= {name: _axes(name) for name in names}
    encoder_axes["encoder_output"] = {0: "batch", 1: "source"}
    encoders = {}
    with torch.no_grad(), warnings.catch_warnings(), transformer_fast_path(False):
        warnings.simplefilter("ignore")  # the tracer's notes on data-dependent branches
        for length in [None] if fused else buckets(max_source_length):
            file = "encoder.onnx" if length is None else f"encoder_{length}.onnx"
            example = src if length is None else torch.full((3, length), 4, dtype=torch.long)
            torch.onnx.export(EncoderGraph(net, names), (example, lengths), out / file,
                              input_names=["src", "src_lengths"],
                              output_names=[*names, "encoder_output"],
                              dynamic_axes=encoder_axes, opset_version=opset, dynamo=False)
            encoders[str(length or "any")] = file
        step = StepGraph(net, names)
        state = net.encode(src, lengths)
        flat = flatten(state)
        torch.onnx.export(step, (torch.full((3,), 5, dtype=torch.long), *flat.values()),
                          out / "step.onnx", input_names=["tokens", *names],
                          output_names=["logits", *[f"{n}_out" for n in step.carried]],
                          dynamic_axes={"tokens": {0: "batch"}, "logits": {0: "batch"},
                                        **{n: _axes(n) for n in names},
                                        **{f"{n}_out": _axes(n) for n in step.carried}},
                          opset_version=opset, dynamo=False)
    return {"opset": opset, "encoders": encoders, "step": "step.onnx", "state": names,
            "carried": step.carried, "batch_axes": {n: STATE[n] for n in names},
            "grouped_memory": True}  # one memory row serves several state rows (beam search)


@contextmanager
def transformer_fast_path(enabled: bool) -> Iterator[None]:
    """torch's fused transformer-layer kernel (used in eval mode) has no ONNX form: a trace of
    ``model.net.self_attention_layers`` must take the layer's plain operators."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _axes(name: str) -> dict[int, str]:
    axes = {STATE[name]: "batch"}
    if name.startswith("memory") or name == "span":
        axes[1] = "source"
    return axes
