"""Export a trained model as a small folder: the weights without optimizer or loop state.

    python -m qa_seq2seq.export --checkpoint outputs/toy_lstm/<run> --out exported/toy
    qa-seq2seq-decode --checkpoint exported/toy
    python -m qa_seq2seq.evaluate ckpt_path=exported/toy

The folder holds ``model.ckpt`` (the network's weights and the qa_seq2seq entry: network, data
and decoding configs and the tokenizer; every command that takes a checkpoint reads it, with the
same safety checks, and warm starts can start from it), ``model.json`` (those configs as JSON,
with the sizes and special token ids, for people and other runtimes) and ``tokenizer.model``.
A training checkpoint also stores Adam's two moments per weight: the export is about a third of
its size. It cannot be resumed (there is no optimizer state).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from qa_seq2seq.checkpoint import FORMAT_VERSION, PAYLOAD_KEY, read_checkpoint
from qa_seq2seq.errors import CheckpointError, entry_point
from qa_seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

EXPORT_FORMAT = "qa_seq2seq-weights"


def export(checkpoint: str | Path | None, out: str | Path) -> Path:
    """Write the export folder ``out`` (which must not hold files yet) from ``checkpoint`` (a
    checkpoint file or run directory; None: the newest run); returns its ``model.ckpt``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"--out {out} already exists and is not an empty folder: choose "
                              "another --out, or remove it")
    ckpt = read_checkpoint(checkpoint)
    payload = ckpt.payload
    tokenizer = Tokenizer(payload["tokenizer"])
    out.mkdir(parents=True, exist_ok=True)
    step = ckpt.raw.get("global_step", 0)
    torch.save({"state_dict": {f"net.{k}": v for k, v in ckpt.state_dict.items()},
                PAYLOAD_KEY: payload, "global_step": step}, out / "model.ckpt")
    (out / "tokenizer.model").write_bytes(tokenizer.model_proto)
    description = {
        "format": EXPORT_FORMAT, "checkpoint_format": FORMAT_VERSION,
        "exported_from": str(ckpt.path), "global_step": step,
        "vocab_size": tokenizer.vocab_size,
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "parameters": {k: list(v.shape) for k, v in ckpt.state_dict.items()},
        **{key: payload.get(key) for key in ("net", "data", "decode")},
    }
    (out / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    return out / "model.ckpt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m qa_seq2seq.export",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="checkpoint file or run directory (default: the newest run)")
    parser.add_argument("--out", metavar="DIR", required=True, help="the folder to write")
    return parser.parse_args(argv)


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    path = export(args.checkpoint, args.out)
    sizes = {p.name: p.stat().st_size for p in sorted(path.parent.iterdir())}
    print(f"wrote {path.parent}: " + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items()))


if __name__ == "__main__":
    main()
