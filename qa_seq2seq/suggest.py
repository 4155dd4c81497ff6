"""Read your training data and say which preset to start from, with the limits it needs.

    python -m qa_seq2seq.suggest data=jsonl data.train_file=train.jsonl \\
        data.validation_file=valid.jsonl
    python -m qa_seq2seq.suggest data=squad

The overrides are those of ``python -m qa_seq2seq.train``: the rows are read, checked and built
into sources exactly as training reads them. Printed: the number of rows; what the questions are
(answers copied from the question or passage, numeric answers, sums and differences and how many
numbers they join, questions about letters), from which the preset follows; question and answer
lengths in the pieces that preset's tokenizer makes of them (percentiles), and the share each
length limit would cut; then the training command to paste, with the limits raised where they
would cut.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

from qa_seq2seq import __version__
from qa_seq2seq.reporting import command_parser, entry_point

SAMPLE = 20_000  # rows the statistics and the tokenizer read (evenly spaced over the split)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
OPERATION = re.compile(r"\d\s*[-+]\s*-?\d|\b(?:plus|minus|sum|total|add|subtract|take away|less "
                       r"than)\b", re.I)
LETTERS = re.compile(r"\bletters?\b", re.I)


PRESETS = {  # the presets the command may name -> the questions each is for
    "toy_lstm": "short questions answered in a few words (the default)",
    "arith_best": "sums and differences of two numbers",
    "arith_chains": "sums and differences of several numbers",
    "characters": "questions about the letters of words",
    "passage_qa": "questions about a passage read with them",
}


class Profile(NamedTuple):
    """What the questions of a sample are: shares of its rows, and its longest chain."""

    rows: int
    copied: float  # the answer occurs in the source (copy attention)
    numeric: float  # the answer is a number (place values)
    arithmetic: float  # the source adds or subtracts numbers
    chains: float  # ... three numbers or more
    most_terms: int
    letters: float  # a letter, a word's letters rearranged, or a question about letters
    source_chars: int  # the median source's length in characters


def profile(sources: Sequence[str], targets: Sequence[str]) -> Profile:
    """The :class:`Profile` of rows (``sources[i]`` answered by ``targets[i]``)."""
    n = len(sources)
    copied = numeric = arithmetic = chains = letters = 0
    most_terms = 0
    for source, target in zip(sources, targets):
        answer = target.strip()
        copied += answer in source
        numeric += NUMBER.fullmatch(answer) is not None
        if OPERATION.search(source) and len(terms := NUMBER.findall(source)) >= 2:
            arithmetic += 1
            chains += len(terms) >= 3
            most_terms = max(most_terms, len(terms))
        letters += bool(LETTERS.search(source)) or is_letter_answer(answer.lower(), source.lower())
    median = sorted(len(s) for s in sources)[n // 2] if n else 0
    return Profile(n, copied / n, numeric / n, arithmetic / n, chains / n, most_terms,
                   letters / n, median)


def is_letter_answer(answer: str, source: str) -> bool:
    """One letter of the source, or a word of the source with its letters rearranged."""
    if len(answer) == 1:
        return answer.isalpha() and answer in source
    words = re.findall(r"[a-z]+", source)
    return answer.isalpha() and any(w != answer and sorted(w) == sorted(answer) for w in words)


def choose(p: Profile) -> str:
    """The preset (a key of :data:`PRESETS`) for questions like ``p``'s (docs/accuracy.md has
    each one's figures)."""
    if p.arithmetic >= 0.5 and p.numeric >= 0.5:
        return "arith_chains" if p.chains >= 0.1 else "arith_best"
    if p.letters >= 0.5:
        return "characters"
    if p.source_chars >= 200:  # a passage to read beside each question
        return "passage_qa"
    return "toy_lstm"


class Lengths(NamedTuple):
    """Lengths in pieces at the 50th, 90th and 99th percentiles and the longest; the share of
    rows over ``limit``."""

    p50: int
    p90: int
    p99: int
    longest: int
    limit: int
    cut: float

    def suggested(self) -> int | None:
        """A limit, a multiple of 16, that cuts no row, or only outliers (beyond twice the 99th
        percentile); None when the present limit already does that."""
        wanted = self.longest if self.longest <= 2 * self.p99 else self.p99
        return 16 * math.ceil(wanted / 16) if wanted > self.limit else None


def lengths(sizes: Sequence[int], limit: int) -> Lengths:
    """The :class:`Lengths` of ``sizes`` (pieces per row) against ``limit``."""
    ordered = sorted(sizes)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return Lengths(at(0.5), at(0.9), at(0.99), ordered[-1], limit,
                   sum(s > limit for s in ordered) / len(ordered))


def suggest(overrides: list[str]) -> str:
    """The report for the training data ``overrides`` describe (see the module docstring)."""
    from hydra.utils import instantiate

    from qa_seq2seq.configs import compose

    data = instantiate(compose(["output_dir=.", *overrides]).data)
    data.prepare_data()
    all_sources, all_targets = data.training_texts()  # streaming: the stream's first rows
    step = max(1, len(all_sources) // SAMPLE)
    sources, targets = all_sources[::step], all_targets[::step]
    found = profile(sources, targets)
    preset = choose(found)

    config = compose(["output_dir=.", f"+experiment={preset}", *overrides]).data
    tokenizer = instantiate(config.tokenizer)(sources + targets)
    question = lengths([len(ids) for ids in tokenizer.encode(sources)],
                       config.max_question_length)
    answer = lengths([len(ids) + 1 for ids in tokenizer.encode(targets)],  # + <eos>
                     config.max_answer_length)

    where = data.where("train")
    lines = [f"{where}: {len(all_sources):,} training rows" +
             (" (the first, streaming)" if data.streams else "") +
             (f" (statistics on {len(sources):,})" if step > 1 else ""),
             "",
             f"{'':24}{'p50':>6}{'p90':>6}{'p99':>6}{'max':>6}   cut at the limit"]
    for name, row, key in (("question pieces", question, "max_question_length"),
                           ("answer pieces (+<eos>)", answer, "max_answer_length")):
        lines.append(f"{name:24}{row.p50:>6}{row.p90:>6}{row.p99:>6}{row.longest:>6}   "
                     f"{100 * row.cut:.1f}% (data.{key}={row.limit})")
    lines += ["",
              f"answers found in the question (copy):  {100 * found.copied:5.1f}%",
              f"numeric answers:                       {100 * found.numeric:5.1f}%",
              f"sums and differences:                  {100 * found.arithmetic:5.1f}%" +
              (f", up to {found.most_terms} numbers ({100 * found.chains:.1f}% with three or more)"
               if found.arithmetic else ""),
              f"questions about letters:               {100 * found.letters:5.1f}%",
              "",
              f"preset: {preset} ({PRESETS[preset]}); pieces counted with its tokenizer "
              f"({config.tokenizer.model_type})"]
    raised = [f"data.{key}={row.suggested()}" for key, row in
              (("max_question_length", question), ("max_answer_length", answer))
              if row.suggested() is not None]
    command = ["python -m qa_seq2seq.train", f"+experiment={preset}", *overrides, *raised]
    return "\n".join([*lines, "start with:", "  " + " ".join(command)])


@entry_point
def main(argv: list[str] | None = None) -> None:
    """Print the data report and the training command to start from."""
    parser = command_parser("python -m qa_seq2seq.suggest", __doc__, __version__)
    parser.add_argument("overrides", nargs="*",
                        help="Hydra overrides of the training config that name the data, "
                             "e.g. data=jsonl data.train_file=train.jsonl")
    print(suggest(parser.parse_args(argv).overrides))


if __name__ == "__main__":
    main()
