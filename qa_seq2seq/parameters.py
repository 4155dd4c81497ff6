"""Print a model's parameters: scope, name, shape, trainable or frozen, initializer, gate rows.

    python -m qa_seq2seq.parameters model/net/cell=peephole_lstm model/init=orthogonal \\
        model.freeze=[encoder.*]
    python -m qa_seq2seq.parameters --checkpoint outputs/toy_lstm/<run>

From config overrides the model is built as ``train`` would build it (``model.net.vocab_size``
defaults to 256 here, since no tokenizer is trained). From a checkpoint, the trained model is
loaded and the initializer column comes from the run's ``.hydra/config.yaml`` when present.
"""

from __future__ import annotations

from torch import nn

from qa_seq2seq import __version__
from qa_seq2seq.errors import CheckpointError
from qa_seq2seq.network.rnn import Recurrent
from qa_seq2seq.network.scopes import aliases, owner_of
from qa_seq2seq.reporting import command_parser, entry_point


def parameter_table(model: nn.Module, plan: dict[str, str] | None = None) -> str:
    """One row per parameter (shared ones once, with their other names), then totals."""
    plan = plan or {}
    names = aliases(model)
    rows = [("scope", "parameter", "shape", "state", "initializer", "gate rows / shared with")]
    totals = {"trainable": 0, "frozen": 0}
    for name, param in model.named_parameters():
        owner, local = owner_of(model, name)
        scope = name[: -len(local) - 1]
        state = "trainable" if param.requires_grad else "frozen"
        totals[state] += param.numel()
        notes = []
        gates = owner.gate_names(local) if isinstance(owner, Recurrent) else None
        if gates:
            size = param.shape[0] // len(gates)
            notes.append(" ".join(f"{g}[{i * size}:{(i + 1) * size}]" for i, g in enumerate(gates)))
        if isinstance(owner, Recurrent) and local.startswith("bias") and "forget" in (gates or ()):
            forget = owner.gate(local, "forget").detach()  # read from the tensor, as trained
            shown = f"{forget[0].item():g}" if bool((forget == forget[0]).all()) else \
                f"mean {forget.mean().item():.3g}"
            notes.append(f"forget gate {shown}")
        others = [n for n in names[id(param)] if n != name]
        if others:
            notes.append("shared with " + ", ".join(others))
        rows.append((scope, local, "x".join(map(str, param.shape)), state, plan.get(name, "-"),
                     "; ".join(notes)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"\ntrainable: {totals['trainable']:,}   frozen: {totals['frozen']:,}   "
                 f"total: {sum(totals.values()):,}")
    return "\n".join(lines)


def from_config(overrides: list[str]) -> str:
    """The parameter table of the network a training config describes."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from qa_seq2seq.configs import compose
    from qa_seq2seq.training.module import set_up

    cfg = compose(["output_dir=.", *overrides])

    if OmegaConf.is_missing(cfg.model.net, "vocab_size"):
        cfg.model.net.vocab_size = 256
    setup = instantiate(cfg.model, _convert_="all")  # a partial holding the net and its set-up
    net = set_up(**setup.keywords)
    return parameter_table(net, setup.keywords["init"].plan(net) if setup.keywords["init"] else None)


def from_checkpoint(path: str) -> str:
    """The parameter table of the network a checkpoint or run holds."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from qa_seq2seq.decoding.checkpoint import load_model
    from qa_seq2seq.registry import INITIALIZER, build

    loaded = load_model(path)
    run_config = loaded.checkpoint.path.parent.parent / ".hydra" / "config.yaml"
    plan = None
    if run_config.is_file():  # the run's own file, but a copied run is someone else's: data
        try:
            stored = OmegaConf.to_container(OmegaConf.load(run_config))
        except (yaml.YAMLError, OmegaConfBaseException) as e:
            raise CheckpointError(f"{run_config}: not a readable run config ({e})") from None
        model = stored.get("model") if isinstance(stored, dict) else None
        if isinstance(model, dict) and (init := model.get("init")):
            plan = build(init, INITIALIZER, f"{run_config} [model.init]").plan(loaded.model)
    return f"{loaded.checkpoint.path}\n" + parameter_table(loaded.model, plan)


@entry_point
def main(argv: list[str] | None = None) -> None:
    """Print the parameter table of a config or a checkpoint."""
    parser = command_parser("python -m qa_seq2seq.parameters", __doc__, __version__)
    parser.add_argument("--checkpoint", metavar="PATH", help="checkpoint file or run directory")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the training config")
    args = parser.parse_args(argv)
    if args.checkpoint and args.overrides:
        parser.error("give either --checkpoint or config overrides, not both")
    print(from_checkpoint(args.checkpoint) if args.checkpoint else from_config(args.overrides))


if __name__ == "__main__":
    main()
