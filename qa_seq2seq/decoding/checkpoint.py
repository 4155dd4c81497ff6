"""Reading checkpoints safely, and rebuilding the model they hold.

A qa_seq2seq checkpoint is a Lightning checkpoint with one extra entry, ``qa_seq2seq``, holding
everything needed to answer questions without the run's config files: the resolved network
config (``model.net`` as trained), the sentencepiece model (bytes), the data config and the
decoding config validation used. Loading never runs code from the file:
``torch.load(weights_only=True)`` refuses pickled objects, and the stored network config is
read as data: only the targets ``qa_seq2seq.registry`` lists for each of its places are built.

This module is on the decoding CLI's path: it must not import Lightning, Hydra's composition or
``datasets``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.decoding.runs import resolve_checkpoint
from qa_seq2seq.decoding.search_options import decode_choice
from qa_seq2seq.errors import CheckpointError, UserError
from qa_seq2seq.registry import DATA, NETWORK, build, check

PAYLOAD_KEY = "qa_seq2seq"
# What the payload holds, each part checked on reading (the network as it is built, the tokenizer
# as it is read); an export copies these and nothing else.
PAYLOAD_PARTS = ("format", "net", "data", "decode", "tokenizer")
FORMAT_VERSION = 2  # 2: the network config under "net"; format 1 (under "model") is upgraded


class Checkpoint(NamedTuple):
    """A checkpoint file as read: its weights, the qa_seq2seq payload, and the whole file."""
    path: Path
    state_dict: dict[str, torch.Tensor]  # the network's weights, names as in Seq2Seq
    payload: dict[str, Any]  # the ``qa_seq2seq`` entry
    raw: dict[str, Any]  # the whole file (optimizer, loops, callbacks: for resuming)


class LoadedModel(NamedTuple):
    """The network a checkpoint holds, rebuilt in eval mode, with its tokenizer."""
    model: torch.nn.Module  # a Seq2Seq in eval mode
    tokenizer: Tokenizer
    checkpoint: Checkpoint


def make_payload(net: Mapping[str, Any], tokenizer: Tokenizer, data: Mapping[str, Any] | None = None,
                 decode: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``qa_seq2seq`` entry of a checkpoint (:data:`PAYLOAD_PARTS`): the resolved network
    config, the tokenizer's model, the data config and the search validation used (None: the
    reader's default, greedy)."""
    payload = {"format": FORMAT_VERSION, "net": dict(net), "data": dict(data or {}),
               "tokenizer": tokenizer.model_proto}
    return payload if decode is None else {**payload, "decode": dict(decode)}


def weights_file(state_dict: Mapping[str, torch.Tensor], payload: Mapping[str, Any],
                 step: int = 0) -> dict[str, Any]:
    """What a checkpoint of only weights and payload holds (an export, a benchmark's model):
    the network's weights under ``net.`` as Lightning's module stores them."""
    return {"state_dict": {f"net.{k}": v for k, v in state_dict.items()},
            PAYLOAD_KEY: dict(payload), "global_step": step}


def read_checkpoint(path: str | Path | None) -> Checkpoint:
    """Load a qa_seq2seq checkpoint without executing anything stored in it."""
    path = resolve_checkpoint(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        # torch's message opens with advice to pass weights_only=False: quote only what it met
        # (an unsupported GLOBAL, a bad opcode), the first line after its boilerplate.
        lines = str(e).splitlines()
        detail = next((line for line in lines[1:]
                       if line.strip() and not line.startswith("Please file an issue")), lines[0])
        raise CheckpointError(
            f"{path}: refused to load: it holds Python objects beyond tensors and plain data, "
            f"which could run code (a checkpoint from an untrusted or non-qa_seq2seq source?). "
            f"Detail: {detail}"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({e})") from None
    if not isinstance(raw, Mapping) or PAYLOAD_KEY not in raw or "state_dict" not in raw:
        keys = sorted(raw)[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(f"{path}: not a qa_seq2seq checkpoint (no '{PAYLOAD_KEY}' entry; "
                              f"found {keys}). Use a checkpoint written by qa_seq2seq.train.")
    payload, weights = raw[PAYLOAD_KEY], raw["state_dict"]
    if not (isinstance(payload, Mapping) and isinstance(weights, Mapping)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items())):
        raise CheckpointError(f"{path}: not a qa_seq2seq checkpoint (its '{PAYLOAD_KEY}' entry "
                              "must be a map, its state_dict names mapped to tensors)")
    if payload.get("format") == 1 and isinstance(payload.get("model"), Mapping):
        # the network config was "model", with the training set-up
        dropped = ("init", "init_from", "freeze")
        net = {k: v for k, v in payload["model"].items() if k not in dropped}
        payload = {**{k: v for k, v in payload.items() if k != "model"}, "net": net,
                   "format": FORMAT_VERSION}
    if payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {payload.get('format')!r}; this "
                              f"version of qa_seq2seq reads formats 1 and {FORMAT_VERSION}: was "
                              "it written by a newer qa_seq2seq?")
    check_stored_configs(payload, path)
    prefix = "net."
    state_dict = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    return Checkpoint(path, state_dict, payload, raw)


def check_stored_configs(payload: Mapping[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose stored data or decode config names anything the registry does
    not allow there, before any command uses a part of it (the network config is checked as it
    is built): what a file stores is data."""
    if payload.get("data"):  # absent or empty: nothing stored to build
        check(payload["data"], DATA, f"{path} [data config]")
    if payload.get("decode") is not None:
        decode_choice(payload["decode"], f"{path} [decode config]")


def build_model(net_config: Any, where: str) -> torch.nn.Module:
    """A Seq2Seq from a stored (resolved) network config, built through the registry: nothing
    the config names is imported or called unless ``qa_seq2seq.registry.NETWORK`` lists it."""
    return build(net_config, NETWORK, where)


def load_model(path: str | Path | None, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the trained model and its tokenizer from a checkpoint file or run directory."""
    checkpoint = read_checkpoint(path)
    model = build_model(checkpoint.payload.get("net"), f"{checkpoint.path} [network config]")
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as e:  # missing, unexpected or differently shaped tensors
        detail = " ".join(str(e).split())[:500]
        raise CheckpointError(f"{checkpoint.path}: weights do not fit the model its config "
                              f"describes: {detail}") from None
    proto = checkpoint.payload.get("tokenizer")
    try:
        if not isinstance(proto, bytes):
            raise TypeError(f"found {type(proto).__name__}, not the model's bytes")
        tokenizer = Tokenizer(proto)
    except (UserError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{checkpoint.path}: its tokenizer cannot be read: {e}") from None
    if tokenizer.vocab_size != model.vocab_size:
        raise CheckpointError(f"{checkpoint.path}: tokenizer has {tokenizer.vocab_size} pieces but "
                              f"the model expects {model.vocab_size}")
    return LoadedModel(model.to(device).eval(), tokenizer, checkpoint)
