"""The documentation: a site that builds strictly, a short README, and comments that document.

The README is a page a newcomer reads in five minutes and the current figures fit a screen or
two; measurements, dates and seed statistics belong to docs/ (dated once) and the experiment
log, never to config comments or the package's docstrings and comments, where they go stale.
"""

import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"README.md": 250, "docs/accuracy.md": 150, "docs/performance.md": 120}
# What a lab notebook says and a reference does not: a date, a spread, a test statistic, a seed
# count, a citation of the README's sections.
NARRATION = re.compile(r"\b20\d\d-\d\d-\d\d\b|±|\+-\s?\d|paired t\b|\b\d+ seeds\b|"
                       r"\bseeds? \d|README(?!\.md)")
MEASUREMENT = re.compile(r"\d\s?(ms|us|s)\b a step|\d(\.\d+)?x (faster|slower)|-> ?\d")


@pytest.mark.cli
def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the dev extra is not installed: pip install -e '.[dev]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "accuracy" / "index.html").exists()


def test_every_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    assert pages and [p for p in pages if p not in nav] == []


@pytest.mark.parametrize("page, limit", LIMITS.items())
def test_pages_stay_short(page, limit):
    lines = len((ROOT / page).read_text().splitlines())
    assert lines <= limit, f"{page}: {lines} lines, the limit is {limit}"


def comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and string literal standing alone (docstrings)."""
    found, previous = [], None
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
        elif token.type == tokenize.STRING and previous in (tokenize.INDENT, tokenize.NEWLINE,
                                                            tokenize.DEDENT, None):
            found.append((token.start[0], token.string))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
    return found


def narration(texts: list[tuple[str, int, str]], pattern: re.Pattern) -> list[str]:
    return [f"{where}:{line}: {match.group(0)!r}" for where, start, text in texts
            for offset, line_text in enumerate(text.splitlines())
            for match in [pattern.search(line_text)] if match
            for line in [start + offset]]


def test_config_comments_document_not_narrate():
    texts = [(str(p.relative_to(ROOT)), 1, p.read_text()) for p in (ROOT / "conf").rglob("*.yaml")]
    assert texts
    assert narration(texts, NARRATION) == [] and narration(texts, MEASUREMENT) == []


def test_experiment_headers_are_short():
    for path in (ROOT / "conf" / "experiment").glob("*.yaml"):
        lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
        header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        assert header <= 5, f"{path.name}: a header of {header} comment lines (at most 5)"


def test_package_docstrings_and_comments_document_not_narrate():
    texts = [(str(p.relative_to(ROOT)), line, text) for p in (ROOT / "qa_seq2seq").rglob("*.py")
             for line, text in comments_and_docstrings(p)]
    assert len(texts) > 100
    assert narration(texts, NARRATION) == []


@pytest.mark.parametrize("text, narrates", [
    ("# 0.853 ± 0.019 over six seeds", True), ("# measured 2026-12-05", True),
    ("# (README, accuracy section)", True), ("# 0.821 +- 0.043", True), ("# paired t 2.13", True),
    ("# see conf/README.md", False), ("# clipped to [-max_place, max_place]", False), ("# 3 seeds", True),
    ("# +-1 step", True), ("# a - b", False)])
def test_the_narration_check_tells_them_apart(text, narrates):
    assert bool(narration([("x", 1, text)], NARRATION)) is narrates


def test_every_key_of_every_group_says_what_it_does():
    """Each key of a group's options has a comment in one of them (a key means the same in every
    option of its group): what conf/README.md and `train --help` print beside it."""
    from qa_seq2seq.configs import CONF_DIR as CONF
    from qa_seq2seq.training.config_docs import GLOBAL_GROUPS, groups, keys

    silent = []
    for name in groups():
        if name in GLOBAL_GROUPS:
            continue
        rows = [(path.name, key, comment) for path in (CONF / name).glob("*.yaml")
                for key, _, comment in keys(path.read_text().splitlines())]
        said = {key for _, key, comment in rows if comment}
        silent += [f"{name}/{file}: {key}" for file, key, _ in rows if key not in said]
    assert silent == []
