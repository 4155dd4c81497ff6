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
]
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
    equivalent = 0
    print("## Survivors\n")
    for name in survivors:
        changes = diff(name)
        reasons = [equivalent(*change) for change in changes]
        if reasons and all(reasons):
            equivalent += 1
        note = f" — equivalent: {reasons[0]}" if reasons and all(reasons) else ""
        print(f"- `{name}`{note}")
        for removed, added in changes:
            print(f"  - `{removed}`\n  + `{added}`")
    print(f"\n{len(survivors)} survivors, {equivalent} marked equivalent.")


def _row(module: str, counts: collections.Counter) -> str:
    checked = sum(counts.values()) - counts["not checked"]
    caught = sum(counts[s] for s in CAUGHT)
    rate = f"{caught / checked:.1%}" if checked else "-"
    return (f"| {module} | {sum(counts.values())} | {counts['killed']} | {counts['timeout']} | "
            f"{counts['survived']} | {counts['no tests']} | {counts['not checked']} | {rate} |")


if __name__ == "__main__":
    main()
