"""What the docs name exists: every ``qa_seq2seq.…`` module path, config key (``a.b.c``) and
config choice (``group=option``) in README.md, docs/*.md and CHANGELOG.md's latest entry is one
the code and conf/ have, so a rename cannot leave the docs behind silently (docs/experiments/ is a
dated log, not a reference, and is left out)."""

import importlib
import inspect
import re
from pathlib import Path

import lightning.pytorch as L
import pytest

from qa_seq2seq.configs import CONF_DIR
from qa_seq2seq.training.config_docs import groups, keys, package

ROOT = Path(__file__).resolve().parents[1]
TOP = ("data", "model", "trainer", "optimizer", "scheduler", "decode", "callbacks", "logger",
       "scheduled_sampling")  # the config's sections whose keys the docs name


def pages() -> dict[str, str]:
    texts = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    texts["CHANGELOG.md (latest entry)"] = changelog.split("\n## ")[1]
    return texts


def spans(text: str) -> list[str]:
    """The text of every `code span` and ```block```."""
    return re.findall(r"```.*?```|`[^`\n]+`", text, re.S)


FILES = {"py", "json", "jsonl", "ckpt", "yaml", "md", "model", "txt"}  # model.json is a file


def known_keys() -> tuple[set[str], set[str]]:
    """Every dotted key of conf/ (and Lightning's Trainer arguments, which trainer.* passes on),
    and the keys whose value is an inline mapping (``people: {train: 400}``)."""
    found, inline = {f"trainer.{name}" for name in inspect.signature(L.Trainer).parameters}, set()
    files = [("", CONF_DIR / f"{root}.yaml") for root in ("train", "evaluate")]
    files += [(package(group), path) for group in groups()
              for path in (CONF_DIR / group).glob("*.yaml")]
    for prefix, path in files:
        for key, default, _ in keys(path.read_text().splitlines()):
            dotted = ".".join(filter(None, (prefix, key)))
            found.add(dotted)
            if default.startswith("{"):
                inline.add(dotted)
    return found, inline


def resolves(path: str) -> bool:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


PAGES = pages()


@pytest.mark.parametrize("page", PAGES)
def test_every_module_path_the_docs_name_exists(page):
    named = {p for p in re.findall(r"\bqa_seq2seq(?:\.[A-Za-z_]\w*)+", PAGES[page])
             if p.rsplit(".", 1)[1] not in FILES | {"X", "Y"}}  # X, Y: placeholders
    assert sorted(p for p in named if not resolves(p)) == []


@pytest.mark.parametrize("page", PAGES)
def test_every_config_key_the_docs_name_exists(page):
    known, inline = known_keys()
    pattern = re.compile(rf"(?<![\w./-])[+~]*((?:{'|'.join(TOP)})(?:\.\w+)+)(?![\w*/])")
    named = {m.group(1) for span in spans(PAGES[page]) for m in pattern.finditer(span)
             if m.group(1).rsplit(".", 1)[1] not in FILES}
    missing = [key for key in sorted(named)
               if key not in known and not any(k.startswith(key + ".") for k in known)
               and not any(key.startswith(k + ".") for k in inline)]
    assert missing == []


@pytest.mark.parametrize("page", PAGES)
def test_every_config_choice_the_docs_name_exists(page):
    options = {group: {p.stem for p in (CONF_DIR / group).glob("*.yaml")} for group in groups()}
    for group, option in re.findall(r"my_conf/([\w/]+)/(\w+)\.yaml", PAGES[page]):
        options[group].add(option)  # a user's own config, shown as one
    pattern = re.compile(r"(?<![\w./-])\+?([a-z_]+(?:/[a-z_]+)*)=([\w,]+)")
    wrong = [f"{g}={o}" for span in spans(PAGES[page]) for g, given in pattern.findall(span)
             if g in options for o in given.split(",") if o not in options[g] and not o.isupper()]
    assert wrong == []


# Hydra's own command-line flags, which train and evaluate take (and --version, ours).
HYDRA_FLAGS = {"--help", "--version", "--config-dir", "--config-path", "--config-name",
               "--multirun", "--cfg", "--resolve", "--package", "--info", "--hydra-help", "--run"}


def flags_of(command: str, capsys) -> set[str]:
    """The long options ``command`` (decode, serve, export, parameters, train, evaluate) takes,
    read from its ``--help``."""
    if command in ("train", "evaluate"):
        return HYDRA_FLAGS
    module = importlib.import_module(f"qa_seq2seq.{command}")
    with pytest.raises(SystemExit):
        (getattr(module, "parse_args", None) or module.main)(["--help"])
    return set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))


@pytest.mark.parametrize("page", PAGES)
def test_every_command_line_flag_the_docs_give_a_command_exists(page, capsys):
    command = re.compile(r"(?:qa-seq2seq-|python -m qa_seq2seq\.)([a-z]+)([^|#;&`]*)")
    wrong = []
    for span in spans(PAGES[page]):
        for line in span.replace("\\\n", " ").splitlines():
            for name, rest in command.findall(line):
                given = set(re.findall(r"(?<!\S)--[a-z][a-z-]*", rest))
                wrong += [f"{name} {flag}" for flag in sorted(given - flags_of(name, capsys))]
    assert wrong == []
