"""What models learn under one wall-clock budget: named configurations x seeds, side by side.

    python scripts/bench_accuracy.py                                   # the README table (short)
    python scripts/bench_accuracy.py --budget 00:00:15:00 --seeds 3    # the long run
    python scripts/bench_accuracy.py --config 'mine:+experiment=arith model/net/cell=gru' --seeds 1

Each configuration is ``label:overrides`` for ``python -m qa_seq2seq.train`` and is trained
through the real entry point, as a user runs it (logger and callbacks on), for ``--budget``
(``trainer.max_time``) per seed; its best checkpoint is then scored with
``python -m qa_seq2seq.evaluate`` on the test split with greedy and beam-5 search, and where the
generated data has one (``data=arith``, ``passages``, ``relations``) on its extrapolation split
(longer numbers, longer passages, larger families than any in training).
The ``reference`` row is a hand-written character-level ``nn.LSTM`` seq2seq (the mission's
model, written as users write it: whole-epoch length-sorted batches, Adam, greedy decoding),
trained on the same files for the same budget.

Prints mean ± std exact match, optimizer steps and real (non-padding) src+tgt tokens/s per
configuration (over the fit, validations included; the reference never validates), and writes
every run's figures to ``--json``. ``--jobs 2 --threads 1`` runs two trainings at a time with
one thread each: every row then runs under the same conditions, and the table takes half the
time (the figures are lower than with all threads for one run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.reporting import entry_point

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [
    "toy_default:+experiment=toy_lstm",
    "toy_best:+experiment=toy_best",
    "arith_default:+experiment=arith",
    "arith_best:+experiment=arith_best",
    "arith_reference:reference data/arith",
    "passages:+experiment=passage_qa",
    "passages_small:+experiment=passage_qa data=passages_small",
    "relations:+experiment=passage_qa data=relations",
]


# What the benchmark sets on every run, and how a user sets it instead: the same key in a
# configuration's overrides would be overridden silently.
OWN_KEYS = {"seed": "choose seeds with --seeds and --first-seed",
            "trainer.max_time": "set the budget with --budget",
            "hydra.run.dir": "choose where runs go with --out",
            "trainer.enable_progress_bar": "it is always off (each run logs to a file)"}
THREADS: dict[str, str] = {}  # OMP_NUM_THREADS for every subprocess, when --threads is given


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` from the repository root, output to ``log``; returns wall seconds."""
    start = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, **THREADS})
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def evaluate(run_dir: Path, decode: str, log: Path, test_file: str | None = None) -> dict:
    """The metrics on the run's test split, or on ``test_file`` in its place (whose results
    evaluate writes to ``eval-test-<file stem>-<decode>/``: ``evaluate.evaluated_name``)."""
    extra, name = ([f"+data.test_file={test_file}"], f"test-{Path(test_file).stem}") if test_file \
        else ([], "test")
    run([sys.executable, "-m", "qa_seq2seq.evaluate", f"ckpt_path={run_dir}", f"decode={decode}",
         *extra], log)
    return json.loads((run_dir / "checkpoints" / f"eval-{name}-{decode}" / "metrics.json")
                      .read_text())["metrics"]


def train_tokens(run_dir: Path, steps: int) -> float:
    """Real src+tgt tokens in ``steps`` batches: the epoch's tokens per batch, times steps."""
    from omegaconf import OmegaConf

    from qa_seq2seq.data.fields import SourceBuilder
    from qa_seq2seq.data.tokenizer import Tokenizer

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    tokenizer = Tokenizer.load(run_dir / "tokenizer.model")
    rows = [json.loads(line) for line in open(ROOT / cfg.data.train_file)]
    rows = rows[: cfg.data.max_train_examples or None]
    builder = SourceBuilder.from_data_config(OmegaConf.to_container(cfg.data, resolve=True))
    sources = [ids[:builder.max_length] for ids in
               tokenizer.encode([builder.text(builder.values(r)) for r in rows])]
    targets = tokenizer.encode([r[cfg.data.answer_field] for r in rows])
    per_batch = (sum(map(len, sources)) + sum(len(t) + 1 for t in targets)) / (
        len(rows) / cfg.data.batch_size)
    return per_batch * steps


def fit_seconds(run_dir: Path) -> float:
    """The fit's wall time from train.log: from the batch count (training starts) to ``done``.
    Validations are included; process start, data preparation and evaluation are not."""
    stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
              for line in (run_dir / "train.log").open()
              if "[qa_seq2seq.data.datamodule][INFO] - train: " in line or "][INFO] - done: " in line]
    return (stamps[-1] - stamps[0]).total_seconds()


def run_config(label: str, overrides: str, seed: int, args, out: Path) -> dict:
    run_dir = out / f"{label}-seed{seed}"
    if overrides.startswith("reference"):
        data = overrides.split()[1]
        wall = run([sys.executable, __file__, "--reference", data, "--seed", str(seed),
                    "--budget", args.budget, "--json", str(run_dir / "reference.json")],
                   out / f"{label}-seed{seed}.log")
        return {**json.loads((run_dir / "reference.json").read_text()), "wall_s": wall}
    wall = run([sys.executable, "-m", "qa_seq2seq.train", *shlex.split(overrides), f"seed={seed}",
                f"trainer.max_time={args.budget}", f"hydra.run.dir={run_dir}",
                "trainer.enable_progress_bar=false"], out / f"{label}-seed{seed}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps = int(metrics["global_step"])
    log = out / f"{label}-seed{seed}-eval.log"
    greedy = evaluate(run_dir, "greedy", log)
    result = {"steps": steps, "wall_s": wall,
              "tokens_per_s": train_tokens(run_dir, steps) / fit_seconds(run_dir),
              "greedy": greedy["exact_match"],
              "beam5": evaluate(run_dir, "beam", log)["exact_match"],
              "families": families(greedy)}
    extrapolation = extrapolation_file(run_dir)
    if extrapolation is not None:
        metrics = evaluate(run_dir, "greedy", log, extrapolation)
        result["extrapolation_greedy"] = metrics["exact_match"]
        result["extrapolation_families"] = families(metrics)
    return result


def extrapolation_file(run_dir: Path) -> str | None:
    """The generated data's extrapolation split beside the run's test file, if it has one."""
    from omegaconf import OmegaConf

    test_file = OmegaConf.load(run_dir / ".hydra" / "config.yaml").data.get("test_file")
    found = Path(test_file).parent / "extrapolation.jsonl" if test_file else None
    return str(found) if found is not None and (ROOT / found).is_file() else None


def families(metrics: dict) -> dict[str, float]:
    """Exact match per family: ``{family: score}``."""
    return {k.split("/")[0]: v for k, v in metrics.items()
            if k.endswith("/exact_match") and k.count("/") == 1}


def check_overrides(specs: list[tuple[str, str]]) -> None:
    """Refuse an override of a key the benchmark sets on every run (see ``OWN_KEYS``)."""
    for label, overrides in specs:
        for override in shlex.split(overrides):
            key = override.lstrip("+~").partition("=")[0]
            if key in OWN_KEYS:
                raise ConfigError(f"--config {label}: {override!r} would be overridden by the "
                                  f"benchmark, which sets {key} on every run: {OWN_KEYS[key]}")


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


@entry_point
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", metavar="LABEL:OVERRIDES",
                        help=f"repeatable; default: {DEFAULT_CONFIGS}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="seeds are FIRST_SEED .. FIRST_SEED+SEEDS-1 (add seeds to a study)")
    parser.add_argument("--budget", default="00:00:03:00",
                        help="wall-clock training budget per run, DD:HH:MM:SS (default 3 min)")
    parser.add_argument("--out", default="bench-results/accuracy", help="run directories")
    parser.add_argument("--json", default="bench-results/accuracy.json")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: torch's)")
    parser.add_argument("--reference", metavar="DATA", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        return reference(args)
    if args.threads:
        THREADS["OMP_NUM_THREADS"] = str(args.threads)
    specs = [spec.partition(":")[::2] for spec in args.config or DEFAULT_CONFIGS]
    check_overrides(specs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {label: {"overrides": overrides, "runs": []} for label, overrides in specs}
    tasks = [(label, overrides, seed) for label, overrides in specs
             for seed in range(args.first_seed, args.first_seed + args.seeds)]

    def one(task: tuple[str, str, int]) -> tuple[str, dict]:
        label, overrides, seed = task
        result = run_config(label, overrides, seed, args, out)
        print(f"{label} seed {seed}: {json.dumps(result)}", flush=True)
        return label, result

    with ThreadPoolExecutor(args.jobs) as pool:  # each task waits on its own subprocesses
        for label, result in pool.map(one, tasks):
            results[label]["runs"].append(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"budget": args.budget, "seeds": args.seeds,
                                           "results": results}, indent=2) + "\n")
    keys = ["greedy", "beam5", "extrapolation_greedy"]
    print(f"\nexact match, mean ± std over {args.seeds} seeds, {args.budget} per run")
    print(f"{'configuration':<18}" + "".join(f"{k:>24}" for k in keys) + f"{'steps':>9}"
          + f"{'tokens/s':>10}")
    for label, entry in results.items():
        runs = entry["runs"]
        cells = [mean_std([r[k] for r in runs if k in r]) for k in keys]
        print(f"{label:<18}" + "".join(f"{c:>24}" for c in cells)
              + f"{statistics.mean(r['steps'] for r in runs):>9.0f}"
              + f"{statistics.mean(r['tokens_per_s'] for r in runs):>10.0f}")
    for label, entry in results.items():  # greedy exact match per family of questions
        if names := sorted({f for r in entry["runs"] for f in r.get("families", {})}):
            print(f"{label:<18} by family (greedy): " + ", ".join(
                f"{f} {mean_std([r['families'][f] for r in entry['runs']])}" for f in names))


# ----- the hand-written reference ------------------------------------------------------------
def reference(args) -> None:
    """Character-level nn.LSTM seq2seq (2x256, embeddings 64, Adam 2e-3, batch 64), trained for
    the budget on whole-epoch (source, target)-sorted shuffled batches, then greedy decoding."""
    import random

    import torch
    import torch.nn.functional as F
    from reference_model import ReferenceSeq2Seq
    from torch import nn

    folder = ROOT / args.reference
    if not (folder / "train.jsonl").exists():  # the project's generators write it on first use
        from qa_seq2seq.data import arith, toy

        (arith if "arith" in str(folder) else toy).ensure_splits(folder)
    held_out = ("test", "extrapolation") if (folder / "extrapolation.jsonl").exists() else ("test",)
    splits = {s: [json.loads(line) for line in open(folder / f"{s}.jsonl")]
              for s in ("train", *held_out)}
    chars = sorted({c for r in splits["train"] for c in r["question"] + r["answer"]})
    index = {c: i + 4 for i, c in enumerate(chars)}  # 0 pad, 1 unk, 2 bos, 3 eos
    encode = lambda text: [index.get(c, 1) for c in text]  # noqa: E731
    torch.manual_seed(args.seed)
    V, E, H, L, B = len(chars) + 4, 64, 256, 2, 64

    def pad(seqs):
        out = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s)
        return out

    train = [(encode(r["question"]), encode(r["answer"])) for r in splits["train"]]
    order = sorted(range(len(train)), key=lambda i: (len(train[i][0]), len(train[i][1])))
    batches = [order[i:i + B] for i in range(0, len(order), B)]
    model, rng = ReferenceSeq2Seq(V, E, H, L), random.Random(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    days, hours, minutes, seconds = map(int, args.budget.split(":"))
    start = time.perf_counter()
    deadline = start + ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    steps, tokens = 0, 0
    while time.perf_counter() < deadline:
        rng.shuffle(batches)
        for rows in batches:
            if time.perf_counter() >= deadline:
                break
            src = pad([train[i][0] for i in rows])
            lengths = torch.tensor([len(train[i][0]) for i in rows])
            tgt_in = pad([[2, *train[i][1]] for i in rows])
            tgt_out = pad([[*train[i][1], 3] for i in rows])
            loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten(),
                                   ignore_index=0)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            steps += 1
            tokens += int(lengths.sum()) + int((tgt_out > 0).sum())
    elapsed = time.perf_counter() - start
    model.eval()

    def greedy_exact_match(rows: list[dict]) -> float:
        from qa_seq2seq.decoding.metrics import exact_match

        correct = 0.0
        for begin in range(0, len(rows), 256):
            batch = rows[begin:begin + 256]
            src = pad([encode(r["question"]) for r in batch])
            lengths = torch.tensor([len(r["question"]) for r in batch])
            for r, ids in zip(batch, model.greedy(src, lengths, max_length=32)):
                correct += exact_match("".join(chars[t - 4] for t in ids if t >= 4), r["answer"])
        return correct / len(rows)

    result = {"steps": steps, "tokens_per_s": tokens / elapsed,
              "greedy": greedy_exact_match(splits["test"])}
    if "extrapolation" in splits:
        result["extrapolation_greedy"] = greedy_exact_match(splits["extrapolation"])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
