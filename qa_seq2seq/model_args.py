"""The command-line arguments of every command that answers with a model (``qa-seq2seq-decode``,
``qa-seq2seq-serve``): the model, the search and its ``KEY=VALUE`` options, the batch size and
the device; and the answerer they describe (torch, or onnxruntime for an ONNX export)."""

from __future__ import annotations

import argparse

from qa_seq2seq.decoding.answerer_base import AnswererBase
from qa_seq2seq.decoding.search_options import SEARCH_TARGETS, search_options
from qa_seq2seq.deployment.runtime import OnnxAnswerer, is_onnx_export
from qa_seq2seq.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    """Lists the searches' options in ``--help`` only: reading them imports torch, which an
    ONNX export is decoded without."""

    def format_help(self) -> str:
        from qa_seq2seq.decoding.answerer import SEARCHES

        searches = "\n".join(f"  {name:<7} " + " ".join(f"{k}={v}" for k, v in
                                                      search_options(search).items())
                             for name, search in SEARCHES.items())
        self.epilog = self.epilog.replace("{searches}", searches)
        return super().format_help()


def model_parser(prog: str, description: str, examples: str, version: str) -> argparse.ArgumentParser:
    """The arguments every command that answers with a model takes: the model, the search and
    its KEY=VALUE options, the batch size and device, and ``--version`` (the package's
    ``version``); finish with ``parse_model_args``."""
    parser = _Parser(
        prog=prog, description=description,
        epilog="Searches (--decode) and their options (KEY=VALUE), with the defaults used when\n"
               "--decode names another search than the checkpoint's:\n{searches}\n\n"
               "Examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="options of the search (see below), e.g. beam_size=10 max_length=32")
    parser.add_argument("--checkpoint", "--model", metavar="PATH", dest="checkpoint",
                        help="checkpoint file, run directory (its best checkpoint) or export "
                             "folder (python -m qa_seq2seq.export; an ONNX export decodes with "
                             "onnxruntime, without torch); default: the newest run under outputs/")
    parser.add_argument("--decode", choices=tuple(SEARCH_TARGETS),
                        help="the search; default: the one the model was validated with in "
                             "training (decode=...), with its options")
    parser.add_argument("--batch-size", type=int, default=64, help="questions per batch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    return parser


def parse_model_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; unknown ``--key value`` and ``key=value`` pairs become the search's options."""
    args, unknown = parser.parse_known_intermixed_args(argv)
    for item in unknown:  # --beam-size 5 for the search option beam_size=5
        key = item.split("=")[0].lstrip("-").replace("-", "_")
        if item.startswith("--") and key.isidentifier():
            parser.error(f"{item}: not an option of this command; a search's options are "
                         f"KEY=VALUE after --decode NAME: {key}=VALUE (--help lists them)")
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.options = {}
    for item in args.overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            parser.error(f"{item!r}: search options are KEY=VALUE, e.g. beam_size=5")
        args.options[key] = option_value(value)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def option_value(text: str) -> bool | int | float | str | None:
    """The value of a KEY=VALUE search option: null/none, true/false, a number, else the text."""
    if text.lower() in ("", "null", "none"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def make_answerer(args: argparse.Namespace) -> AnswererBase:
    """The torch Answerer, or the onnxruntime one for an ONNX export folder."""
    if not is_onnx_export(args.checkpoint):
        from qa_seq2seq.decoding.answerer import Answerer

        return Answerer.from_checkpoint(args.checkpoint, args.decode, batch_size=args.batch_size,
                                        device=args.device, **args.options)
    if args.device != "cpu":
        raise ConfigError(f"--device {args.device}: an ONNX export runs on the CPU with "
                          "onnxruntime; drop --device, or decode the run (or a weights export)")
    if getattr(args, "attention", False):
        raise ConfigError("--attention reads the torch model's attention weights: decode the run "
                          "(or a weights export) instead of the ONNX export")
    return OnnxAnswerer(args.checkpoint, args.decode, batch_size=args.batch_size, **args.options)
