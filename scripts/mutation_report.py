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
    **{("while block := f.read(1 << 20):", f"while block := f.read({size}):"):
       "the block size of a streamed hash: any size gives the same digest"
       for size in ("None", "2 << 20", "1 << 21")},
    ("self._skip = 0", "self._skip = None"): "batches[None:] is batches[0:]",
    ("src_max = tgt_max = 0", "src_max = tgt_max = 1"):
        "every row has at least one question token and one answer position (<eos>), so both "
        "running maxima are at least 1",
    **{('return torch.tanh(g.contiguous() if g.device.type == "cpu" else g)', mutant):
       "contiguous() on the CPU is speed only: tanh of a strided view has the same values"
       for mutant in ('return torch.tanh(g.contiguous() if (g.device.type == "cpu") and False '
                      'else g)',
                      'return torch.tanh(g.contiguous() if (g.device.type == "cpu") or True '
                      'else g)',
                      'return torch.tanh(g.contiguous() if g.device.type != "cpu" else g)',
                      'return torch.tanh(g.contiguous() if g.device.type == "XXcpuXX" else g)',
                      'return torch.tanh(g.contiguous() if g.device.type == "CPU" else g)')},
    ('detail = " ".join(str(e).split())[:500]', 'detail = " ".join(str(e).split())[:501]'):
        "the cap on how much of torch's message is quoted",
    ("return best_possible <= worst_kept", "return best_possible < worst_kept"):
        "differs only when a live score ties the worst kept one exactly: the search then runs "
        "one more step, which cannot change the n-best",
    ('if lengths is None or bool((lengths == total).all()):',
     'if lengths is None or bool(None):'):
        'packing rows that all have the full length gives the unpacked result: speed only',
    ('c0 = (x.new_zeros(layers * directions, batch, self.hidden_size)',
     'c0 = (x.new_zeros(layers * directions, self.hidden_size)'):
        'zeros of (L*D, H) broadcast over the batch as (L*D, B, H) would',
    ('if lengths is not None and not bool((lengths == steps).all()):',
     'if lengths is not None and not bool(None):'):
        'a mask that marks every step real changes nothing: speed only',
    ('layer_input = outputs[0] if directions == 1 else torch.cat(outputs, -1)',
     'layer_input = outputs[0] if (directions == 1) and False else torch.cat(outputs, -1)'):
        "concatenating a single direction's output is that output",
    ('layer_input = F.dropout(layer_input, self.dropout, training=True)',
     'layer_input = F.dropout(layer_input, self.dropout, )'):
        "training=True is F.dropout's default",
    ('if self.training and self.recurrent_dropout > 0:  # one mask per sequence (variational)',
     'if self.training and self.recurrent_dropout >= 0:  # one mask per sequence (variational)'):
        'with recurrent_dropout 0 the mask keeps every unit and divides by 1',
    ('normed_c = F.layer_norm(c, gain_c.shape, gain_c, bias_c, eps)',
     'normed_c = F.layer_norm(c, gain_c.shape, gain_c, bias_c, )'):
        "eps is 1e-5, F.layer_norm's default eps",
    ('return (F.layer_norm(x, (size,), eps=eps).view(shape)) * gain',
     'return (F.layer_norm(x, (size,), ).view(shape)) * gain'):
        "self.eps is 1e-5, F.layer_norm's default eps",
    ('nn.RNN.__init__(self, input_size, hidden_size, num_layers, nonlinearity="tanh", bias=bias,',
     'nn.RNN.__init__(self, input_size, hidden_size, num_layers, bias=bias,'):
        "tanh is nn.RNN's default nonlinearity",
    ('receptive = tensor[0][0].numel()',
     'receptive = tensor[1][0].numel()'):
        'every [i][j] slice of a weight holds the same number of elements',
    ('receptive = tensor[0][0].numel()',
     'receptive = tensor[0][1].numel()'):
        'every [i][j] slice of a weight holds the same number of elements',
    ('spec, why = self.overrides[hits[-1]], ""',
     'spec, why = self.overrides[hits[-1]], "XXXX"'):
        'the reason is read only for parameters that keep their values (spec None)',
    ('elif name.rsplit(".", 1)[-1].startswith("bias"):',
     'elif name.rsplit(".", )[-1].startswith("bias"):'):
        'the last dotted piece is the same for any split count',
    ('spec, why = "zeros", ""',
     'spec, why = "zeros", "XXXX"'):
        'the reason is read only for parameters that keep their values (spec None)',
    ('spec, why = self.default, ""',
     'spec, why = self.default, "XXXX"'):
        'the reason is read only for parameters that keep their values (spec None)',
    ('raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)',
     'raw = torch.load(path, map_location=None, weights_only=True, mmap=True)'):
        'the map location only says where tensors land: the CPU, where they are anyway here',
    ('raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)',
     'raw = torch.load(path, weights_only=True, mmap=True)'):
        'the map location only says where tensors land: the CPU, where they are anyway here',
    ('detail = next((line for line in lines[1:]',
     'detail = next((line for line in lines[2:]'):
        "torch's second line is blank or 'Please file an issue', skipped either way",
    ('max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs")',
     'max_steps, max_epochs = trainer.get("max_steps", None), trainer.get("max_epochs")'):
        'None and -1 both mean no step limit',
    ('max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs")',
     'max_steps, max_epochs = trainer.get("max_steps", ), trainer.get("max_epochs")'):
        'None and -1 both mean no step limit',
    ('return seed * 100_003 + epoch',
     'return seed * 100_003 - epoch'):
        'a seed derivation: any formula giving each (seed, epoch) its own stream keeps the '
        'promises the tests check (reproducible, new per epoch and per seed)',
    ('return seed * 100_003 + epoch',
     'return seed / 100_003 + epoch'):
        'a seed derivation: any formula giving each (seed, epoch) its own stream keeps the '
        'promises the tests check (reproducible, new per epoch and per seed)',
    ('return seed * 100_003 + epoch',
     'return seed * 100004 + epoch'):
        'a seed derivation: any formula giving each (seed, epoch) its own stream keeps the '
        'promises the tests check (reproducible, new per epoch and per seed)',
    ('longest = max((sum(pair) for pair in lengths), default=0)',
     'longest = max((sum(pair) for pair in lengths), default=1)'):
        'differs only for data.max_tokens=0 on an empty split',
    ('rank=rank, shuffle=shuffle, seed=seed)',
     'rank=rank, seed=seed)'):
        'unshuffled passes sort every row by length, whatever order the sampler gives',
    ('if self._cached is not None and self._cached[0] == epoch:',
     'if self._cached is not None and self._cached[1] == epoch:'):
        'the per-epoch cache saves recomputing the same batches: speed only',
    ('self._cached = (epoch, batches)',
     'self._cached = None'):
        'the per-epoch cache saves recomputing the same batches: speed only',
    ('if missing <= 0:',
     'if missing < 0:'):
        'padding with zero layers returns the input',
    ("if self.uses_loop or (single_step and self.loop_single_steps_on_cpu):",
     "if self.uses_loop or (single_step or self.loop_single_steps_on_cpu):"):
        "which path runs the steps is speed only: the loop and torch's kernel agree (tested)",
    ("packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)",
     "packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=None)"):
        "None is falsy: the same as False",
    ('elif name.rsplit(".", 1)[-1].startswith("bias"):',
     'elif name.rsplit(".", 2)[-1].startswith("bias"):'):
        "the last dotted piece is the same for any split count",
}
# Families: a mutant is equivalent when deleting ``pattern``'s matches from both lines (after
# dropping a trailing ", " before ")") leaves the same line, that is when it changed nothing
# else. (pattern, why it cannot change what a user or test can observe.)
EQUIVALENT_FAMILIES = [
    (r",?\s*\bdevice=[\w.]+|\.to\([\w.]*\)",
     "CPU only: every tensor is already on the CPU here (a GPU run would tell)"),
    (r"^single_step = .*$",
     "which path runs a single step is speed only: the loop and torch's kernel agree (tested)"),
    (r"(?<=logits\.float\(\)),\s*(-1|None|\+1)(?=\))",
     "the logits are 2-D (B, V): dims None, 1 and -1 all mean the vocabulary"),
    (r"(?<=done, )[^,]+, [^,)]+(?=\)\])",
     "greedy and sampled answers are ranked alone, and every penalty but average divides by 1 "
     "with alpha 0 (gnmt: ((5 + len) / 6) ** 0)"),
    (r",\s*_convert_=[^,()]*",
     "the network's arguments are scalars and flat mappings: DictConfig and dict build the same "
     "network (checked: same repr and weights)"),
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
    for pattern, why in EQUIVALENT_FAMILIES:
        if re.search(pattern, removed) and _without(pattern, removed) == _without(pattern, added):
            return why
    return None


def _without(pattern: str, line: str) -> str:
    return re.sub(pattern, "", re.sub(r",\s*\)", ")", line))


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
