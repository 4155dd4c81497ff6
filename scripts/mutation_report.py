"""Summarise the last `mutmut run` as Markdown: the kill rate per module, then every surviving
mutant with its diff, marked when it is known to be equivalent (and why).

    make mutate                     # mutmut run, then this script > MUTATION.md
    python scripts/mutation_report.py > MUTATION.md

A mutant is caught when a test fails (killed) or hangs (timeout). "no tests": no in-process
test runs the mutated function (subprocess tests are invisible to mutmut); "not checked": the
run stopped before it.
"""

from __future__ import annotations

import collections
import datetime
import re
import subprocess
import sys

# Survivors that cannot change behaviour, by their diff (removed line, added line), stripped.
EQUIVALENT = {
    ("if history.shape[1] == 0 or history.shape[1] < n - 1:",
     "if history.shape[1] == 0 and history.shape[1] < n - 1:"):
        "a history shorter than n - 1 bans nothing either way: the loop below is empty",
    ("prefix = tuple(seq[len(seq) - (n - 1):]) if n > 1 else ()",
     "prefix = tuple(seq[len(seq) - (n - 1):]) if (n > 1) or True else ()"):
        "for n = 1 the slice seq[len(seq):] is () too",
    ("self._skip = 0", "self._skip = None"): "batches[None:] is batches[0:]",
    ("batches, current, src_max, tgt_max = [], [], 0, 0",
     "batches, current, src_max, tgt_max = [], [], 1, 0"):
        "every row has at least one question token, so the running maximum is at least 1",
    ("batches, current, src_max, tgt_max = [], [], 0, 0",
     "batches, current, src_max, tgt_max = [], [], 0, 1"):
        "every row has at least one answer position (<eos>), so the running maximum is at least 1",
    ('detail = " ".join(str(e).split())[:500]', 'detail = " ".join(str(e).split())[:501]'):
        "the cap on how much of torch's message is quoted",
    ("return best_possible <= worst_kept", "return best_possible < worst_kept"):
        "differs only when a live score ties the worst kept one exactly: the search then runs "
        "one more step, which cannot change the n-best",
}
# Whole families, by what the mutant changed: (pattern the removed line matches, pattern the
# added line matches, why it cannot change what the tests can observe).
EQUIVALENT_FAMILIES = [
    (r"device=|\.to\(", r"device=None|\.to\(None\)|,\s*\)|\(\s*\)",
     "CPU only: every tensor is already on the CPU here (a GPU run would tell)"),
    (r"log_softmax\(logits\.float\(\), -1\)", r"log_softmax\(logits\.float\(\), (None|\+1|)\)",
     "the logits are 2-D (B, V): dims None, 1 and -1 all mean the vocabulary"),
    (r"torch\.load\(", r"^(?=.*weights_only=True)",
     "memory-mapping and the CPU map location change how the file is read, not what is read"),
    (r"spec, why = .*, \"\"$", r"\"XXXX\"$",
     "the reason is read only for parameters that keep their values (spec None)"),
    (r"rsplit\(\"\.\", 1\)\[-1\]", r"rsplit\(\"\.\", (2)?\)\[-1\]",
     "the last dotted piece is the same for any split count"),
    (r"instantiate\(dict\(net_config\), _convert_=\"all\"\)", r"instantiate",
     "the network's arguments are scalars and flat mappings: DictConfig and dict build the same "
     "network (checked: same repr and weights)"),
    (r"batch_first=True", r"batch_first=False|bias=bias, dropout=dropout",
     "always-loop cells (peephole, layernorm) never call torch's kernel, the only reader of "
     "batch_first"),
    (r"return seed \* 100_003 \+ epoch", r"return seed",
     "a seed derivation: any formula giving each (seed, epoch) its own stream keeps the promises "
     "the tests check (reproducible, new per epoch and per seed)"),
    (r"trainer\.get\(\"max_steps\", -1\)", r"trainer\.get\(\"max_steps\", (None)?\)",
     "None and -1 both mean no step limit"),
    (r'done, "none", 0\.0\)', r"hypothesis",
     "greedy and sampled answers are ranked alone, and every penalty but average divides by 1 "
     "with alpha 0 (gnmt: ((5 + len) / 6) ** 0)"),
    (r"single_step = ", r"single_step",
     "which path runs a single step is speed only: the loop and torch's kernel agree (tested)"),
    (r"if self\.uses_loop or \(single_step and", r"single_step or",
     "which path runs a single step is speed only: the loop and torch's kernel agree (tested)"),
    (r"if lengths is None or bool\(\(lengths == total\)\.all\(\)\):", r"bool\(None\)",
     "packing rows that all have the full length gives the unpacked result: speed only"),
    (r"enforce_sorted=False", r"enforce_sorted=None", "None is falsy: the same as False"),
    (r"c0 = \(x\.new_zeros\(layers \* directions, batch, self\.hidden_size\)",
     r"new_zeros\(layers \* directions, self\.hidden_size\)",
     "zeros of (L*D, H) broadcast over the batch as (L*D, B, H) would"),
    (r"if lengths is not None and not bool\(\(lengths == steps\)\.all\(\)\):", r"bool\(None\)",
     "a mask that marks every step real changes nothing: speed only"),
    (r"layer_input = outputs\[0\] if directions == 1", r"and False",
     "concatenating a single direction's output is that output"),
    (r"F\.dropout\(layer_input, self\.dropout, training=True\)", r"self\.dropout, \)",
     "training=True is F.dropout's default"),
    (r"if self\.training and self\.recurrent_dropout > 0:", r"recurrent_dropout >= 0",
     "with recurrent_dropout 0 the mask keeps every unit and divides by 1"),
    (r"F\.layer_norm\(", r"\(\)|, \)", "self.eps is 1e-5, F.layer_norm's default eps"),
    (r'nonlinearity="tanh"', r"nn\.RNN\.__init__", "tanh is nn.RNN's default nonlinearity"),
    (r"receptive = tensor\[0\]\[0\]\.numel\(\)", r"receptive = tensor",
     "every [i][j] slice of a weight holds the same number of elements"),
    (r"longest = max\(\(sum\(pair\) for pair in lengths\), default=0\)", r"default=1\)",
     "differs only for data.max_tokens=0 on an empty split"),
    (r"rank=rank, shuffle=shuffle, seed=seed\)", r"rank=rank, seed=seed\)",
     "unshuffled passes sort every row by length, whatever order the sampler gives"),
    (r"self\._cached", r"_cached\[1\] == epoch|self\._cached = None",
     "the per-epoch cache saves recomputing the same batches: speed only"),
    (r"if missing <= 0:", r"if missing < 0:", "padding with zero layers returns the input"),
    (r"for line in lines\[1:\]", r"lines\[2:\]",
     "torch's second line is blank or 'Please file an issue', skipped either way"),
]
# Survivors that are not equivalent and that the fast tests cannot catch here, with why.
EXPLAINED = {
    ("layer_input = F.dropout(layer_input, self.dropout, training=True)",
     "layer_input = F.dropout(layer_input, training=True)"):
        "p = 0.5 is F.dropout's default and the dropout the tests use; telling p apart needs a "
        "statistical test of the mask",
    ('raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)',
     'raw = torch.load(path, map_location="cpu", weights_only=None, mmap=True)'):
        "torch >= 2.6 loads weights only by default, so the refusal tests pass on 2.13; kept "
        "explicit because pyproject allows torch 2.4",
    ('raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)',
     'raw = torch.load(path, map_location="cpu", mmap=True)'):
        "torch >= 2.6 loads weights only by default, so the refusal tests pass on 2.13; kept "
        "explicit because pyproject allows torch 2.4",
}
CAUGHT = ("killed", "timeout")


def equivalent(removed: str, added: str) -> str | None:
    """Why the mutant ``removed -> added`` is equivalent, or None when it is not known to be."""
    if (removed, added) in EQUIVALENT:
        return EQUIVALENT[removed, added]
    for before, after, why in EQUIVALENT_FAMILIES:
        if re.search(before, removed) and re.search(after, added):
            return why
    return None


def mutmut(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], capture_output=True,
                          text=True, check=True).stdout


def results() -> dict[str, str]:
    """mutant name -> status, for every mutant of the last run."""
    found = re.findall(r"^\s+(\S+): (.+)$", mutmut("results", "--all", "true"), re.M)
    return dict(found)


def diff(name: str) -> list[tuple[str, str]]:
    lines = [line for line in mutmut("show", name).splitlines()
             if line[:1] in "-+" and not line.startswith(("---", "+++"))]
    removed = [line[1:].strip() for line in lines if line.startswith("-")]
    added = [line[1:].strip() for line in lines if line.startswith("+")]
    return list(zip(removed, added))


def main() -> None:
    statuses = results()
    by_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, status in statuses.items():
        by_module[name.rsplit(".", 1)[0]][status] += 1
    print(f"# Mutation testing report\n\n`make mutate` (mutmut), {datetime.date.today()}. "
          "Caught = killed by a failing test, or timed out.\n")
    print("| module | mutants | killed | timeout | survived | no tests | not checked | caught / checked |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total = collections.Counter()
    for module, counts in sorted(by_module.items()):
        total += counts
        print(_row(module, counts))
    print(_row("**all**", total) + "\n")

    survivors = [name for name, status in statuses.items() if status == "survived"]
    marked = explained = 0
    print("## Survivors\n")
    for name in survivors:
        changes = diff(name)
        reasons = [equivalent(*change) for change in changes]
        if reasons and all(reasons):
            marked += 1
        note = f" — equivalent: {reasons[0]}" if reasons and all(reasons) else ""
        if not note and len(changes) == 1 and changes[0] in EXPLAINED:
            note = f" — not caught: {EXPLAINED[changes[0]]}"
            explained += 1
        print(f"- `{name}`{note}")
        for removed, added in changes:
            print(f"  - `{removed}`\n  + `{added}`")
    print(f"\n{len(survivors)} survivors: {marked} marked equivalent, {explained} explained, "
          f"{len(survivors) - marked - explained} to kill.")


def _row(module: str, counts: collections.Counter) -> str:
    checked = sum(counts.values()) - counts["not checked"]
    caught = sum(counts[s] for s in CAUGHT)
    rate = f"{caught / checked:.1%}" if checked else "-"
    return (f"| {module} | {sum(counts.values())} | {counts['killed']} | {counts['timeout']} | "
            f"{counts['survived']} | {counts['no tests']} | {counts['not checked']} | {rate} |")


if __name__ == "__main__":
    main()
