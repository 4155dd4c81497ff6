"""One table of the final metrics of many runs: a Hydra sweep (-m), or everything under outputs/.

    python -m qa_seq2seq.train -m +experiment=toy_lstm model/net/cell=lstm,gru model.net.hidden_size=128,256
    python scripts/summarize_runs.py                      # the newest sweep under outputs/
    python scripts/summarize_runs.py outputs/ --sort val/loss --ascending

Each run directory holds the overrides it was started with (.hydra/overrides.yaml) and the
metrics train() wrote at its end (metrics.json).
"""

import argparse
import json
from pathlib import Path

import yaml

from qa_seq2seq.reporting import entry_point

COLUMNS = ("best_score", "val/exact_match", "val/loss", "global_step")


def find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("**/metrics.json"))


def newest_sweep(outputs: Path) -> Path:
    sweeps = sorted(outputs.glob("*/multirun_*"), key=lambda p: p.stat().st_mtime)
    if not sweeps:
        raise SystemExit(f"no sweep under {outputs}/ (run `python -m qa_seq2seq.train -m ...`), "
                         "or pass a folder to summarize")
    return sweeps[-1]


@entry_point
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", help="folder to search (default: the newest sweep)")
    parser.add_argument("--sort", default="best_score", help="metric to sort by")
    parser.add_argument("--ascending", action="store_true")
    args = parser.parse_args()
    root = Path(args.root) if args.root else newest_sweep(Path("outputs"))
    runs = []
    for run in find_runs(root):
        overrides_file = run / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        runs.append((run, overrides, json.loads((run / "metrics.json").read_text())))
    if not runs:
        raise SystemExit(f"no finished runs (metrics.json) under {root}")
    shared = set.intersection(*(set(o) for _, o, _ in runs))  # show what differs between runs
    rows = [(" ".join(o for o in overrides if o not in shared) or "-", run, metrics)
            for run, overrides, metrics in runs]
    rows.sort(key=lambda r: r[2].get(args.sort, float("nan")), reverse=not args.ascending)
    width = max(len(r[0]) for r in rows)
    print(f"{root}: {len(rows)} runs, sorted by {args.sort}")
    print(f"{'overrides':<{width}}  " + "  ".join(f"{c:>15}" for c in COLUMNS) + "  run")
    for overrides, run, metrics in rows:
        cells = [f"{metrics[c]:>15.4f}" if isinstance(metrics.get(c), float)
                 else f"{metrics.get(c, '-')!s:>15}" for c in COLUMNS]
        print(f"{overrides:<{width}}  " + "  ".join(cells) + f"  {run.relative_to(root)}")


if __name__ == "__main__":
    main()
