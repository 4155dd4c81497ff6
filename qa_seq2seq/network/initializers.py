"""Parameter initializers (``model/init=``): small in-place functions and one dispatcher.

A spec is a name (``"orthogonal"``) or a mapping with ``name`` and keyword arguments
(``{name: truncated_normal, std: 0.01}``). :class:`Initializer` decides, for every parameter:

1. the last ``overrides`` glob that matches one of its names, if any -> that spec;
2. otherwise, with ``default: torch_default`` -> left as torch initialised it;
3. otherwise a bias (last name component starts with ``bias``) -> zeros;
4. otherwise a matrix (2+ dims) -> the ``default`` spec;
5. otherwise (layer-norm gains, peepholes) -> left at its module's neutral value.

Fused RNN kernels stack one block of rows per gate (4*H for an LSTM); every spec is applied to each
gate block separately, so fan-in/fan-out are those of one gate. Last, every LSTM's forget-gate
bias is set to its ``forget_bias`` (in ``bias_ih``; ``bias_hh``'s slice is zero).
Draws come from torch's global generator, so one ``seed`` reproduces the model, and each RNN gets
its own draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.rnn import Recurrent
from qa_seq2seq.network.scopes import aliases, match, owner_of

Spec = str | Mapping[str, Any]


def fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a torch-layout weight ``(out, in, *kernel)``; a vector's own size."""
    if tensor.dim() < 2:
        return tensor.numel(), tensor.numel()
    receptive = tensor[0][0].numel()
    return tensor.size(1) * receptive, tensor.size(0) * receptive


def uniform_(tensor: Tensor, scale: float = 0.05) -> Tensor:
    """U(-scale, scale)."""
    return tensor.uniform_(-scale, scale)


def uniform_unit_scaling_(tensor: Tensor, factor: float = 1.0) -> Tensor:
    """U(-a, a) with a = factor * sqrt(3 / fan_in): keeps the output variance of a linear map."""
    limit = factor * math.sqrt(3.0 / fans(tensor)[0])
    return tensor.uniform_(-limit, limit)


def variance_scaling_(tensor: Tensor, scale: float = 1.0, mode: str = "fan_in",
                      distribution: str = "truncated_normal") -> Tensor:
    """Variance ``scale / n`` with n = fan_in, fan_out or their mean (``mode``='fan_avg').

    ``distribution``: ``truncated_normal`` (cut at 2 std, std corrected so that the variance is
    exact), ``untruncated_normal`` or ``uniform``.
    """
    fan_in, fan_out = fans(tensor)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}.get(mode)
    if n is None:
        raise ConfigError(f"variance_scaling mode={mode!r}: use fan_in, fan_out or fan_avg")
    variance = scale / n
    if distribution == "truncated_normal":
        # Std of a standard normal truncated to [-2, 2]; dividing by it makes the variance exact.
        return truncated_normal_(tensor, 0.0, math.sqrt(variance) / 0.87962566103423978)
    if distribution == "untruncated_normal":
        return tensor.normal_(0.0, math.sqrt(variance))
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return tensor.uniform_(-limit, limit)
    raise ConfigError(f"variance_scaling distribution={distribution!r}: use truncated_normal, "
                     "untruncated_normal or uniform")


def glorot_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    return variance_scaling_(tensor, gain**2, "fan_avg", "uniform")


def glorot_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, gain^2 * 2 / (fan_in + fan_out)), untruncated (as ``torch.nn.init.xavier_normal_``)."""
    return variance_scaling_(tensor, gain**2, "fan_avg", "untruncated_normal")


def truncated_normal_(tensor: Tensor, mean: float = 0.0, std: float = 0.05) -> Tensor:
    """N(mean, std^2) with values beyond 2 std redrawn."""
    return nn.init.trunc_normal_(tensor, mean, std, mean - 2 * std, mean + 2 * std)


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix (Saxe et al. 2014), times ``gain``."""
    return nn.init.orthogonal_(tensor, gain)


def constant_(tensor: Tensor, value: float = 0.0) -> Tensor:
    """Fill ``tensor`` with ``value`` in place."""
    return tensor.fill_(value)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with zeros in place."""
    return tensor.zero_()


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with ones in place."""
    return tensor.fill_(1.0)


INITIALIZERS: dict[str, Callable[..., Tensor]] = {
    "uniform": uniform_,
    "uniform_unit_scaling": uniform_unit_scaling_,
    "variance_scaling": variance_scaling_,
    "glorot_uniform": glorot_uniform_,
    "glorot_normal": glorot_normal_,
    "truncated_normal": truncated_normal_,
    "orthogonal": orthogonal_,
    "constant": constant_,
    "zeros": zeros_,
    "ones": ones_,
}
KEEP = "torch_default"


def parse_spec(spec: Spec) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{name: ..., **kwargs}`` -> (name, kwargs), checking the name exists."""
    if isinstance(spec, str):
        name, kwargs = spec, {}
    else:
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
    if name != KEEP and name not in INITIALIZERS:
        raise ConfigError(f"unknown initializer {name!r}; choose one of "
                         f"{[KEEP, *INITIALIZERS]}")
    return name, kwargs


def describe(spec: Spec) -> str:
    """An initializer spec as one string, e.g. ``variance_scaling(scale=2.0)``."""
    name, kwargs = parse_spec(spec)
    return name + (f"({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if kwargs else "")


@torch.no_grad()
def init_(tensor: Tensor, spec: Spec, blocks: int = 1) -> Tensor:
    """Apply ``spec`` to ``tensor`` in place, separately to each of its ``blocks`` row blocks."""
    name, kwargs = parse_spec(spec)
    if name == KEEP:
        return tensor
    for block in tensor.view(blocks, -1, *tensor.shape[1:]).unbind(0):
        INITIALIZERS[name](block, **kwargs)
    return tensor


class Initializer:
    """Initialises a whole model: a ``default`` spec plus per-glob ``overrides``."""

    def __init__(self, default: Spec = "glorot_uniform",
                 overrides: Mapping[str, Spec] | None = None):
        self.default = default
        self.overrides = dict(overrides or {})
        for spec in [default, *self.overrides.values()]:
            parse_spec(spec)  # fail at construction, not halfway through a model

    def __repr__(self) -> str:
        return f"Initializer(default={describe(self.default)}, overrides={self.overrides})"

    def plan(self, model: nn.Module) -> dict[str, str]:
        """``{parameter name: what it gets}``, without touching any value."""
        plan = {}
        for name, (_, spec, why, _) in self._decide(model).items():
            plan[name] = describe(spec) if spec is not None else why
        return plan

    def __call__(self, model: nn.Module) -> dict[str, str]:
        """Initialise ``model`` in place; returns the plan it followed."""
        for param, spec, _, blocks in self._decide(model).values():
            if spec is not None:
                init_(param, spec, blocks)
        for module in model.modules():
            if isinstance(module, Recurrent):
                module.reset_forget_bias_()
        return self.plan(model)

    def _decide(self, model: nn.Module) -> dict[str, tuple[Tensor, Spec | None, str, int]]:
        """name -> (parameter, spec or None to keep, reason when kept, gate blocks)."""
        params = {id(p): p for p in model.parameters()}
        names_of = aliases(model)
        all_names = [n for names in names_of.values() for n in names]
        matched = match(all_names, list(self.overrides), "model.init.overrides")
        decisions = {}
        for key, names in names_of.items():
            param, name = params[key], names[0]
            hits = [p for p, found in matched.items() if set(found) & set(names)]
            if hits:
                spec, why = self.overrides[hits[-1]], ""
            elif parse_spec(self.default)[0] == KEEP:
                spec, why = None, KEEP
            elif name.rsplit(".", 1)[-1].startswith("bias"):
                spec, why = "zeros", ""
            elif param.dim() >= 2:
                spec, why = self.default, ""
            else:
                spec, why = None, "module default"
            decisions[name] = (param, spec, why, _gate_blocks(model, name))
        return decisions


def _gate_blocks(model: nn.Module, name: str) -> int:
    """How many gate blocks the parameter ``name`` stacks (1 unless it is a fused RNN kernel)."""
    owner, local = owner_of(model, name)
    gates = owner.gate_names(local) if isinstance(owner, Recurrent) else None
    return len(gates) if gates else 1
