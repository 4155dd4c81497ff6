"""Recurrent layers with one interface: torch's fused LSTM/GRU/RNN and custom LSTM variants.

Each class subclasses the matching ``torch.nn`` module, so parameter names (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_hr_l0``), shapes, gate order (LSTM: input, forget, cell, output;
GRU: reset, update, new) and ``reset_parameters`` are torch's. A checkpoint of one loads into
another wherever the extra parameters can start at their neutral value.

Two execution paths:

- *fused*: torch's kernel (cuDNN on GPU), with packed sequences when lengths differ (on CPU
  an LSTM batch of mixed lengths is instead run one kernel call per distinct length: see
  ``Recurrent.group_lengths_on_cpu``);
- *loop*: the input projection of all time steps in one GEMM, then a Python loop that does only
  the recurrent matmul and the gate math per step. Used by the custom cells, and by the fused
  cells in training when ``recurrent_dropout > 0`` (the kernel cannot apply a per-sequence mask).

Batch first everywhere: inputs ``(B, T, I)``, outputs ``(B, T, D*H_out)``; states use torch's
``(L*D, B, H)`` layout.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from qa_seq2seq.compatibility import cpu_has_bf16_units
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.dropout import dropout

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("reset", "update", "new")
RNN_GATES = ("hidden",)
PEEPHOLE_GATES = ("input", "forget", "output")


class State(NamedTuple):
    """Recurrent state: ``h`` (L*D, B, H_out) and, for the LSTM family, ``c`` (L*D, B, H)."""

    h: Tensor
    c: Tensor | None = None


# What one recurrent step reads besides its input, per cell family (the loop path's ``_step``
# takes these fields after ``projected, h_in, h, c``).
class RNNStepParams(NamedTuple):
    """What a tanh RNN's loop step reads besides its input."""
    w_hh: Tensor  # (H, H)


class LSTMStepParams(NamedTuple):
    """What an LSTM's loop step reads besides its input."""
    w_hh: Tensor  # (4H, H_out)
    peephole: Tensor | None = None  # (3H,): input, forget, output (PeepholeLSTM)
    w_hr: Tensor | None = None  # (H_out, H): the projection, when proj_size > 0
    cell_clip: float | None = None


class LayerNormStepParams(NamedTuple):
    """What a layer-normalised LSTM's loop step reads besides its input."""
    w_hh: Tensor  # (4H, H)
    gain_hh: Tensor  # (4H,): per-gate-block layer-norm gains of W_hh h
    gain_c: Tensor  # (H,): layer norm of the cell state
    bias_c: Tensor  # (H,)
    eps: float


class GRUStepParams(NamedTuple):
    """What a GRU's loop step reads besides its input."""
    w_hh: Tensor  # (3H, H)
    b_hh: Tensor | None  # (3H,): kept apart, since b_hn sits inside r * (W_hn h + b_hn)


class RNNOutput(NamedTuple):
    """A recurrent layer's outputs at every step and its final state."""
    output: Tensor  # (B, T, D*H_out): the top layer at every step, zeros at padded positions
    state: State  # the state after each sequence's last real step


def _emulated_bf16(x: Tensor) -> bool:
    """Whether ``x`` is read under CPU bfloat16 autocast (``trainer.precision=bf16-mixed``) on a
    CPU without bfloat16 units: there oneDNN builds no fused LSTM/GRU kernel (it raises), so the
    loop path runs the same math, its matmuls in bfloat16 as autocast casts them."""
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16 and not _cpu_has_bf16_units())


@functools.cache
def _cpu_has_bf16_units() -> bool:
    return bool(cpu_has_bf16_units())


class Recurrent:
    """Mixin shared by every layer class: naming, gate views, forget bias, the two paths."""

    gates: ClassVar[tuple[str, ...]]
    has_cell_state: ClassVar[bool] = False
    always_loop: ClassVar[bool] = False
    loop_single_steps_on_cpu: ClassVar[bool] = False
    # Run a CPU batch of mixed lengths as one kernel call per distinct length (each group cut to
    # its length) instead of packing it, while there are at least MIN_ROWS_PER_LENGTH rows a
    # length on average. Only where torch's CPU kernel has a oneDNN path that packed input
    # loses (the LSTM without projection).
    group_lengths_on_cpu: ClassVar[bool] = False
    MIN_ROWS_PER_LENGTH: ClassVar[int] = 8
    # The loop path's step through torch.compile (``model.compile``): its gate math fused into
    # one kernel. Not in the state dict: an execution choice, not part of the model.
    compiled: bool = False
    # Recurrent-dropout masks drawn inside ``one_dropout_mask``, by layer and direction.
    _held_masks: dict[str, Tensor] | None = None

    def _setup(self, name: str, recurrent_dropout: float, forget_bias: float) -> None:
        if not 0.0 <= recurrent_dropout < 1.0:
            raise ConfigError(f"recurrent_dropout must be in [0, 1), got {recurrent_dropout}")
        self.name = name
        self.recurrent_dropout = recurrent_dropout
        self.forget_bias = forget_bias
        self._reset_own_()  # torch's __init__ drew the weights: draw nothing twice

    # ----- introspection ---------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Size of ``h`` per direction (``proj_size`` when projecting)."""
        return self.proj_size or self.hidden_size

    def gate_names(self, param: str) -> tuple[str, ...] | None:
        """The gate blocks stacked in parameter ``param`` (rows), or None if it is not fused."""
        if param.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ln_ih",
                             "weight_ln_hh")):
            return self.gates
        if param.startswith("weight_peephole"):
            return PEEPHOLE_GATES
        return None

    def gate(self, param: str, gate: str) -> Tensor:
        """A view of one gate's rows of a fused parameter: ``gate("weight_hh_l0", "forget")``."""
        names = self.gate_names(param)
        if names is None or gate not in names:
            raise KeyError(f"{self.name}.{param} has no gate {gate!r}; gates: {names}")
        weight = getattr(self, param)
        return weight.view(len(names), -1, *weight.shape[1:])[names.index(gate)]

    def extra_repr(self) -> str:
        extras = [f"name={self.name!r}", super().extra_repr()]
        if self.recurrent_dropout:
            extras.append(f"recurrent_dropout={self.recurrent_dropout}")
        if self.has_cell_state:
            extras.append(f"forget_bias={self.forget_bias}")
        return ", ".join(extras)

    # ----- initialisation --------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """torch's draw of every weight, then what torch does not know (forget bias, neutral
        peepholes and norms). torch's ``__init__`` calls it before ``_setup`` has run: that is
        the one draw at construction; ``_setup`` then sets only the rest."""
        super().reset_parameters()  # type: ignore[misc]  (nn.LSTM/GRU/RNN's)
        if hasattr(self, "forget_bias"):
            self._reset_own_()

    def _reset_own_(self) -> None:
        """Set what torch's draw does not: the forget bias (subclasses: their own parameters)."""
        self.reset_forget_bias_()

    @torch.no_grad()
    def reset_forget_bias_(self) -> None:
        """Forget-gate bias: ``bias_ih`` gets ``forget_bias``, ``bias_hh`` gets 0.

        torch adds both bias vectors, so writing the value into both would double it.
        """
        if not (self.has_cell_state and self.bias):
            return
        for name in self._flat_weights_names:
            if name.startswith("bias_ih"):
                self.gate(name, "forget").fill_(self.forget_bias)
            elif name.startswith("bias_hh"):
                self.gate(name, "forget").zero_()

    # ----- forward -----------------------------------------------------------------------------
    @property
    def uses_loop(self) -> bool:
        return self.always_loop or (self.training and self.recurrent_dropout > 0)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> RNNOutput:
        """Run over ``x`` (B, T, I); ``lengths`` (B,) marks right padding; ``state`` is initial."""
        single_step = x.size(1) == 1 and x.device.type == "cpu"
        if self.uses_loop or (single_step and self.loop_single_steps_on_cpu) or _emulated_bf16(x):
            return self.loop(x, lengths, state)
        return self._fused(x, lengths, state)

    def _fused(self, x: Tensor, lengths: Tensor | None, state: State | None) -> RNNOutput:
        total = x.size(1)
        if lengths is None or bool((lengths == total).all()):
            return self._kernel(x, state)
        if self._groups_lengths(x, lengths):
            return self._by_length(x, lengths, state)
        hx = None if state is None else (tuple(state) if self.has_cell_state else state.h)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, hx = super().forward(packed, hx)  # the torch.nn base class, next in the MRO
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=total)
        return RNNOutput(output, State(*hx) if self.has_cell_state else State(hx))

    def _kernel(self, x: Tensor, state: State | None) -> RNNOutput:
        """torch's kernel over every step of x (B, T, I)."""
        hx = None if state is None else (tuple(state) if self.has_cell_state else state.h)
        output, hx = super().forward(x, hx)  # type: ignore[misc]  (nn.LSTM/GRU/RNN's)
        return RNNOutput(output, State(*hx) if self.has_cell_state else State(hx))

    def _groups_lengths(self, x: Tensor, lengths: Tensor) -> bool:
        # torch's CPU LSTM runs packed input without oneDNN, which is slower than one oneDNN
        # call per distinct length while each length has enough rows.
        return (self.group_lengths_on_cpu and x.device.type == "cpu" and not self.proj_size
                and torch.backends.mkldnn.is_available()
                and len(lengths.unique()) * self.MIN_ROWS_PER_LENGTH <= len(lengths))

    def _by_length(self, x: Tensor, lengths: Tensor, state: State | None) -> RNNOutput:
        """One kernel call per distinct length, on that length's rows cut to it: x (B, T, I)
        -> outputs (B, T, D*H_out), zeros at padding, as a packed call gives. An LSTM's only
        (``group_lengths_on_cpu``): the state is always ``(h, c)``."""
        total, groups = x.size(1), []
        lengths = lengths.to(x.device)
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            sub = None if state is None else State(*(s.index_select(1, rows) for s in state))
            out = self._kernel(x.index_select(0, rows)[:, :length], sub)
            groups.append((rows, F.pad(out.output, (0, 0, 0, total - length)), out.state))
        inverse = torch.cat([rows for rows, _, _ in groups]).argsort()  # back to input order
        output = torch.cat([out for _, out, _ in groups]).index_select(0, inverse)
        h = torch.cat([s.h for _, _, s in groups], 1).index_select(1, inverse)
        c = torch.cat([s.c for _, _, s in groups], 1).index_select(1, inverse)
        return RNNOutput(output, State(h, c))

    def loop(self, x: Tensor, lengths: Tensor | None = None, state: State | None = None) -> RNNOutput:
        """The step-by-step path (public so tests can hold it against torch's kernel)."""
        batch, steps, _ = x.shape
        layers, directions = self.num_layers, self.num_directions
        if state is None:
            h0 = x.new_zeros(layers * directions, batch, self.output_size)
            c0 = (x.new_zeros(layers * directions, batch, self.hidden_size)
                  if self.has_cell_state else None)
        else:
            h0, c0 = state.h, state.c
        # (T, B, 1) True where step t is real for that sequence: padded steps keep the state.
        mask = None
        if lengths is not None and not bool((lengths == steps).all()):
            mask = (torch.arange(steps, device=x.device)[:, None] < lengths.to(x.device)[None, :])
            mask = mask.unsqueeze(-1)
        layer_input, hs, cs = x, [], []
        for layer in range(layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                out, h, c = self._run_layer(
                    layer_input, suffix, h0[k], None if c0 is None else c0[k], mask, bool(direction)
                )
                outputs.append(out)
                hs.append(h)
                cs.append(c)
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, -1)
            if self.dropout and self.training and layer < layers - 1:
                layer_input = dropout(layer_input, self.dropout, training=True)
        output = layer_input if mask is None else layer_input * mask.transpose(0, 1)
        h = torch.stack(hs)
        c = torch.stack(cs) if self.has_cell_state else None
        return RNNOutput(output, State(h, c))

    @contextmanager
    def one_dropout_mask(self) -> Iterator[None]:
        """Every call inside reuses the recurrent-dropout masks of the first, so a sequence run
        a step per call (scheduled sampling, input feeding) keeps one mask, as a sequence run in
        one call does."""
        self._held_masks = {}
        try:
            yield
        finally:
            self._held_masks = None

    def _dropout_mask(self, suffix: str, h: Tensor) -> Tensor | None:
        """The variational mask (B, H_out) on the recurrent ``h`` of one layer and direction:
        drawn once per sequence, None outside training or without ``recurrent_dropout``."""
        if not (self.training and self.recurrent_dropout > 0):
            return None
        held = self._held_masks
        if held is not None and suffix in held:
            return held[suffix]
        keep = 1.0 - self.recurrent_dropout
        drop = torch.bernoulli(h.new_full(h.shape, keep)) / keep
        if held is not None:
            held[suffix] = drop
        return drop

    def _run_layer(
        self, x: Tensor, suffix: str, h: Tensor, c: Tensor | None, mask: Tensor | None,
        reverse: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer, one direction: x (B, T, I) -> out (B, T, H_out), final h, c."""
        projected = self._project_inputs(x, suffix).unbind(1)  # T x (B, G): one GEMM for all steps
        step_params = self._step_params(suffix)
        drop = self._dropout_mask(suffix, h)
        steps = range(len(projected) - 1, -1, -1) if reverse else range(len(projected))
        outputs: list[Tensor] = [h] * len(projected)
        step = compiled_step(type(self)._step) if self.compiled else self._step
        for t in steps:
            h_new, c_new = step(projected[t], h if drop is None else h * drop, h, c,
                                      *step_params)
            if mask is None:
                h, c = h_new, c_new
            else:
                h = torch.where(mask[t], h_new, h)
                c = None if c is None else torch.where(mask[t], c_new, c)
            outputs[t] = h
        return torch.stack(outputs, 1), h, c

    def _project_inputs(self, x: Tensor, suffix: str) -> Tensor:
        """(B, T, I) -> (B, T, G*H); both biases folded in where the cell allows."""
        bias = None
        if self.bias:
            bias = getattr(self, "bias_ih" + suffix) + getattr(self, "bias_hh" + suffix)
        return F.linear(x, getattr(self, "weight_ih" + suffix), bias)

    def _step_params(self, suffix: str) -> RNNStepParams:
        return RNNStepParams(getattr(self, "weight_hh" + suffix))


def _gate_tanh(g: Tensor) -> Tensor:
    """tanh of one gate block, a column slice (B, H) of the (B, 4H) gates. On CPU it is copied
    first: with several threads torch's CPU tanh of a strided view is slower than the copy and a
    tanh of the copy together (same values, bit for bit; sigmoid has no such penalty). Not on a
    GPU, where the copy would be one more kernel launch a step."""
    return torch.tanh(g.contiguous() if g.device.type == "cpu" else g)


def _lstm_step(
    projected: Tensor, h_in: Tensor, h: Tensor, c: Tensor, w_hh: Tensor,
    peephole: Tensor | None = None, w_hr: Tensor | None = None, cell_clip: float | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step. projected (B, 4H) already holds W_ih x + biases; h_in is the (dropped) h."""
    gates = torch.addmm(projected, h_in, w_hh.t())  # (B, 4H)
    i, f, g, o = gates.chunk(4, 1)
    if peephole is not None:
        p_i, p_f, p_o = peephole.chunk(3)
        i, f = i + p_i * c, f + p_f * c
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * _gate_tanh(g)
    if cell_clip is not None:
        c = c.clamp(-cell_clip, cell_clip)
    if peephole is not None:
        o = o + p_o * c
    h = torch.sigmoid(o) * torch.tanh(c)
    if w_hr is not None:
        h = h @ w_hr.t()
    return h, c


class LSTM(Recurrent, nn.LSTM):
    """``torch.nn.LSTM`` (fused kernel) with a name, ``forget_bias`` and ``recurrent_dropout``."""

    gates = LSTM_GATES
    has_cell_state = True
    # One step at a time (decoding), torch's CPU LSTM kernel costs several times the loop path's
    # step: its fixed cost per call dominates.
    loop_single_steps_on_cpu = True
    group_lengths_on_cpu = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 recurrent_dropout: float = 0.0, forget_bias: float = 1.0, name: str = "lstm"):
        nn.LSTM.__init__(self, input_size, hidden_size, num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional, proj_size=proj_size)
        self._setup(name, recurrent_dropout, forget_bias)

    def _step_params(self, suffix: str) -> LSTMStepParams:
        w_hr = getattr(self, "weight_hr" + suffix) if self.proj_size else None
        return LSTMStepParams(getattr(self, "weight_hh" + suffix), w_hr=w_hr)

    _step = staticmethod(_lstm_step)


class PeepholeLSTM(LSTM):
    """The "full" LSTM (Gers & Schmidhuber; Sak et al. 2014): peepholes, cell clipping, projection.

    Adds ``weight_peephole_l{k}`` (3*H,): diagonal peephole weights for the input, forget and
    output gates, starting at zero so that a plain ``lstm`` checkpoint gives identical outputs.
    ``cell_clip`` clamps ``c`` to [-cell_clip, cell_clip] after each update.
    """

    always_loop = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 recurrent_dropout: float = 0.0, forget_bias: float = 1.0,
                 cell_clip: float | None = None, name: str = "peephole_lstm"):
        nn.LSTM.__init__(self, input_size, hidden_size, num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional, proj_size=proj_size)
        self.cell_clip = cell_clip
        for suffix in _suffixes(num_layers, bidirectional):
            self.register_parameter("weight_peephole" + suffix,
                                    nn.Parameter(torch.zeros(3 * hidden_size)))
        self._setup(name, recurrent_dropout, forget_bias)

    @torch.no_grad()
    def _reset_own_(self) -> None:
        for suffix in _suffixes(self.num_layers, self.bidirectional):  # neutral: a plain LSTM
            getattr(self, "weight_peephole" + suffix).zero_()
        super()._reset_own_()

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", cell_clip={self.cell_clip}" if self.cell_clip else "")

    def _step_params(self, suffix: str) -> LSTMStepParams:
        return super()._step_params(suffix)._replace(
            peephole=getattr(self, "weight_peephole" + suffix), cell_clip=self.cell_clip)


class LayerNormLSTM(LSTM):
    """Layer-normalised LSTM (Ba et al. 2016), normalising each gate block separately.

    gates = LN(W_ih x) + LN(W_hh h) + b_ih + b_hh;  c' = f*c + i*g;  h' = o * tanh(LN(c')).
    Gains ``weight_ln_ih_l{k}``, ``weight_ln_hh_l{k}`` (4*H,) start at 1; the cell norm has gain
    ``weight_ln_c_l{k}`` and bias ``bias_ln_c_l{k}`` (H,). The input-side norm covers all steps at
    once, outside the loop.
    """

    always_loop = True
    eps = 1e-5

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False,
                 recurrent_dropout: float = 0.0, forget_bias: float = 1.0,
                 name: str = "layernorm_lstm"):
        nn.LSTM.__init__(self, input_size, hidden_size, num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional)
        for suffix in _suffixes(num_layers, bidirectional):
            for name_, size in (("weight_ln_ih", 4), ("weight_ln_hh", 4), ("weight_ln_c", 1),
                                ("bias_ln_c", 1)):
                self.register_parameter(name_ + suffix,
                                        nn.Parameter(torch.empty(size * hidden_size)))
        self._setup(name, recurrent_dropout, forget_bias)

    @torch.no_grad()
    def _reset_own_(self) -> None:
        for suffix in _suffixes(self.num_layers, self.bidirectional):  # identity norms
            for gain in ("weight_ln_ih", "weight_ln_hh", "weight_ln_c"):
                getattr(self, gain + suffix).fill_(1.0)
            getattr(self, "bias_ln_c" + suffix).zero_()
        super()._reset_own_()

    def _project_inputs(self, x: Tensor, suffix: str) -> Tensor:
        projected = _gate_norm(F.linear(x, getattr(self, "weight_ih" + suffix)),
                               getattr(self, "weight_ln_ih" + suffix), 4, self.eps)
        if self.bias:
            projected = projected + getattr(self, "bias_ih" + suffix) + getattr(self,
                                                                              "bias_hh" + suffix)
        return projected

    def _step_params(self, suffix: str) -> LayerNormStepParams:
        return LayerNormStepParams(*(getattr(self, n + suffix) for n in (
            "weight_hh", "weight_ln_hh", "weight_ln_c", "bias_ln_c")), eps=self.eps)

    @staticmethod
    def _step(projected: Tensor, h_in: Tensor, h: Tensor, c: Tensor, w_hh: Tensor,
              gain_hh: Tensor, gain_c: Tensor, bias_c: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        gates = projected + _gate_norm(h_in @ w_hh.t(), gain_hh, 4, eps)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * _gate_tanh(g)
        normed_c = F.layer_norm(c, gain_c.shape, gain_c, bias_c, eps)
        return torch.sigmoid(o) * torch.tanh(normed_c), c


def _gate_norm(x: Tensor, gain: Tensor, blocks: int, eps: float) -> Tensor:
    """Layer norm over each of ``blocks`` gate blocks of the last dim, with per-row gains."""
    shape = x.shape
    size = int(shape[-1]) // blocks  # a constant even when traced (ONNX export)
    x = x.view(*shape[:-1], blocks, size)
    return (F.layer_norm(x, (size,), eps=eps).view(shape)) * gain


class GRU(Recurrent, nn.GRU):
    """``torch.nn.GRU`` (fused kernel) with a name and ``recurrent_dropout``."""

    gates = GRU_GATES

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False,
                 recurrent_dropout: float = 0.0, name: str = "gru"):
        nn.GRU.__init__(self, input_size, hidden_size, num_layers, bias=bias, batch_first=True,
                        dropout=dropout, bidirectional=bidirectional)
        self._setup(name, recurrent_dropout, forget_bias=0.0)

    def _project_inputs(self, x: Tensor, suffix: str) -> Tensor:
        # b_hn sits inside r * (W_hn h + b_hn), so only b_ih can be folded into the projection.
        return F.linear(x, getattr(self, "weight_ih" + suffix),
                        getattr(self, "bias_ih" + suffix) if self.bias else None)

    def _step_params(self, suffix: str) -> GRUStepParams:
        return GRUStepParams(getattr(self, "weight_hh" + suffix),
                             getattr(self, "bias_hh" + suffix) if self.bias else None)

    @staticmethod
    def _step(projected: Tensor, h_in: Tensor, h: Tensor, c: None, w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, None]:
        x_r, x_z, x_n = projected.chunk(3, 1)
        h_r, h_z, h_n = F.linear(h_in, w_hh, b_hh).chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return n + z * (h - n), None


class RNN(Recurrent, nn.RNN):
    """``torch.nn.RNN`` with tanh (fused kernel), a name and ``recurrent_dropout``."""

    gates = RNN_GATES

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False,
                 recurrent_dropout: float = 0.0, name: str = "rnn"):
        nn.RNN.__init__(self, input_size, hidden_size, num_layers, nonlinearity="tanh", bias=bias,
                        batch_first=True, dropout=dropout, bidirectional=bidirectional)
        self._setup(name, recurrent_dropout, forget_bias=0.0)

    @staticmethod
    def _step(projected: Tensor, h_in: Tensor, h: Tensor, c: None,
              w_hh: Tensor) -> tuple[Tensor, None]:
        return torch.tanh(torch.addmm(projected, h_in, w_hh.t())), None


@functools.cache
def compiled_step(step):
    """``torch.compile`` of a loop-path step function, made once per function and shared by
    every layer using it (rows vary between batches and as decoding drops finished questions:
    dynamic shapes, so one compiled kernel serves them all)."""
    return torch.compile(step, dynamic=True)


def _suffixes(num_layers: int, bidirectional: bool) -> list[str]:
    """torch's parameter suffixes: _l0, _l0_reverse, _l1, ..."""
    directions = ("", "_reverse") if bidirectional else ("",)
    return [f"_l{layer}{d}" for layer in range(num_layers) for d in directions]
