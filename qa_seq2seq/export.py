"""Export a trained model as a small folder: its weights for torch, or ONNX graphs.

    python -m qa_seq2seq.export --checkpoint outputs/toy_lstm/<run> --out exported/toy
    qa-seq2seq-decode --checkpoint exported/toy
    python -m qa_seq2seq.evaluate ckpt_path=exported/toy

    python -m qa_seq2seq.export --checkpoint outputs/toy_lstm/<run> --out exported/toy-onnx --format onnx
    qa-seq2seq-decode --model exported/toy-onnx

--format weights (the default): the folder holds ``model.ckpt`` (the network's weights and the
qa_seq2seq entry: network, data and decoding configs and the tokenizer; every command that takes
a checkpoint reads it, with the same safety checks, and warm starts can start from it),
``model.json`` (those configs as JSON, with the sizes and special token ids, for people and
other runtimes) and ``tokenizer.model``. A training checkpoint also stores Adam's two moments
per weight: the export is about a third of its size. It cannot be resumed (there is no optimizer state).

--format onnx: ``encoder.onnx`` and ``step.onnx`` (the network's encode and one decoder step;
see qa_seq2seq.deployment.onnx_graphs), ``model.json`` and ``tokenizer.model``: what the torch-free runtime
(qa_seq2seq.deployment.runtime) decodes with, greedy or beam, on numpy and onnxruntime alone. ``--quantize
int8`` stores the weights of the matrix products as 8-bit integers (onnxruntime's dynamic
quantization): a smaller, usually faster model whose answers may differ slightly. Needs the
export extra: pip install -e ".[export]".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qa_seq2seq import __version__
from qa_seq2seq.data.fields import SourceBuilder
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from qa_seq2seq.decoding.checkpoint import FORMAT_VERSION, PAYLOAD_PARTS, load_model, weights_file
from qa_seq2seq.deployment.runtime import ONNX_FORMAT
from qa_seq2seq.errors import CheckpointError, ConfigError
from qa_seq2seq.reporting import command_parser, entry_point
from qa_seq2seq.training.saving import atomic_save

EXPORT_FORMAT = "qa_seq2seq-weights"
FORMATS = ("weights", "onnx")


def export(checkpoint: str | Path | None, out: str | Path, format: str = "weights",
           opset: int = 17, quantize: str | None = None) -> Path:
    """Write the export folder ``out`` (which must not hold files yet) from ``checkpoint`` (a
    checkpoint file or run directory; None: the newest run) and return it."""
    out = Path(out)
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose from {', '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize!r}: the one choice is int8")
    if quantize and format != "onnx":
        raise ConfigError("--quantize int8 quantizes ONNX graphs: add --format onnx")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"--out {out} already exists and is not an empty folder: choose "
                              "another --out, or remove it")
    loaded = load_model(checkpoint)
    ckpt, tokenizer = loaded.checkpoint, loaded.tokenizer
    payload = {key: ckpt.payload[key] for key in PAYLOAD_PARTS if key in ckpt.payload}
    step = ckpt.raw.get("global_step", 0)
    if format == "onnx":
        _require_onnx()
    out.mkdir(parents=True, exist_ok=True)
    described: dict = {"format": EXPORT_FORMAT}
    if format == "weights":
        atomic_save(weights_file(ckpt.state_dict, payload, step), out / "model.ckpt")
    else:
        from qa_seq2seq.deployment.onnx_graphs import export_graphs

        max_source = SourceBuilder.from_data_config(payload.get("data", {})).max_length
        described = {"format": ONNX_FORMAT,
                     "graphs": export_graphs(loaded.model, out, max_source, opset)}
        if quantize:
            _quantize(out, described["graphs"])
            described["graphs"]["quantized"] = quantize
    (out / "tokenizer.model").write_bytes(tokenizer.model_proto)
    description = {
        **described, "checkpoint_format": FORMAT_VERSION,
        "exported_from": str(ckpt.path), "global_step": step,
        "vocab_size": tokenizer.vocab_size,
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "parameters": {k: list(v.shape) for k, v in ckpt.state_dict.items()},
        **{key: payload.get(key) for key in ("net", "data", "decode")},
    }
    (out / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    return out


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx.export writes through it)
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package: pip install -e \".[export]\"") from None


def _quantize(out: Path, graphs: dict) -> None:
    """Dynamic int8 quantization of every graph in place (weights int8, activations float)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ConfigError("--quantize int8 needs onnxruntime: pip install -e \".[export]\"") from None
    for file in [*graphs["encoders"].values(), graphs["step"]]:
        quantize_dynamic(out / file, out / file, weight_type=QuantType.QInt8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The export command's arguments."""
    parser = command_parser("python -m qa_seq2seq.export", __doc__, __version__)
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="checkpoint file or run directory (default: the newest run)")
    parser.add_argument("--out", metavar="DIR", required=True, help="the folder to write")
    parser.add_argument("--format", choices=FORMATS, default="weights",
                        help="weights: model.ckpt for every torch command (default); onnx: "
                             "graphs for the torch-free runtime (qa-seq2seq-decode --model DIR)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (--format onnx)")
    parser.add_argument("--quantize", choices=("int8",),
                        help="--format onnx only: 8-bit weights (onnxruntime dynamic quantization)")
    return parser.parse_args(argv)


@entry_point
def main(argv: list[str] | None = None) -> None:
    """Export a checkpoint and print the files written with their sizes."""
    args = parse_args(argv)
    folder = export(args.checkpoint, args.out, args.format, args.opset, args.quantize)
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
    print(f"wrote {folder}: " + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items()))


if __name__ == "__main__":
    main()
