"""What each key of the training config means: the comment beside each key in ``conf/``, the
one source for ``conf/README.md`` (``scripts/config_reference.py``) and for
``python -m qa_seq2seq.train --help``.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa_seq2seq.configs import CONF_DIR

# key: value  # comment   (the value may be empty: a mapping follows)
KEY = re.compile(r"^(?P<indent> *)(?P<key>[^\s#:'\"-][^:#]*|'[^']*'|\"[^\"]*\"):(?P<value>[^#]*?)"
                 r"\s*(?:#\s?(?P<comment>.*))?$")
GLOBAL_GROUPS = ("experiment", "debug")  # their files set keys anywhere (# @package _global_)


def groups() -> list[str]:
    """The config groups a user chooses from (``model/net/cell``, ``experiment``...), sorted;
    Hydra's own are left out."""
    found = {p.parent.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*.yaml")} - {"."}
    return sorted(g for g in found if not g.startswith("hydra"))


def header(lines: list[str]) -> str:
    """The file's leading comment lines, joined."""
    text = []
    for line in lines:
        if not line.startswith("#"):
            break
        text.append(line.lstrip("#").strip())
    return " ".join(t for t in text if t and not t.startswith("@package"))


def keys(lines: list[str]) -> list[tuple[str, str, str]]:
    """``(dotted key, default, comment)`` for each key line outside the defaults list and hydra."""
    rows, path, skip_indent = [], [], None
    for line in lines:
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"]) // 2
        key = match["key"].strip().strip("'\"")
        if skip_indent is not None and indent > skip_indent:
            continue
        skip_indent = None
        if key in ("defaults", "hydra") or key.startswith("_"):
            skip_indent = indent if key in ("defaults", "hydra") else None
            continue
        path = path[:indent] + [key]
        value = match["value"].strip()
        rows.append((".".join(path), value, (match["comment"] or "").strip()))
    return rows


def package(group: str) -> str:
    """Where a group's keys land: ``model/net/cell`` -> ``model.net.cell``; '' for global groups."""
    return "" if group in GLOBAL_GROUPS else group.replace("/", ".")


def key_comments(choices: dict[str, str | None], root: str = "train") -> dict[str, str]:
    """``{dotted key: comment}`` for the config ``root`` composed with ``choices`` (Hydra's
    ``group: option``): the chosen option's comment first, then any other option's of the same
    group (a key means the same in every option of a group), then the root file's."""
    comments: dict[str, str] = {}

    def add(path: Path, prefix: str) -> None:
        for key, _, comment in keys(path.read_text().splitlines()):
            full = f"{prefix}.{key}" if prefix else key
            if comment and full not in comments:
                comments[full] = comment

    add(CONF_DIR / f"{root}.yaml", "")
    for group, option in choices.items():
        folder = CONF_DIR / group
        if group.startswith("hydra") or not folder.is_dir():
            continue
        chosen = folder / f"{option}.yaml"
        for path in [chosen, *sorted(folder.glob("*.yaml"))]:
            if path.is_file() and (path == chosen or group not in GLOBAL_GROUPS):
                add(path, package(group))
    return comments


def annotate(yaml_text: str, comments: dict[str, str]) -> str:
    """A composed config's YAML with each key's comment at the end of its line."""
    out, path = [], []
    for line in yaml_text.splitlines():
        match = KEY.match(line)
        if match and not line.lstrip().startswith("- "):
            path = path[: len(match["indent"]) // 2] + [match["key"].strip().strip("'\"")]
            if comment := comments.get(".".join(path)):
                line = f"{line}  # {comment}"
        out.append(line)
    return "\n".join(out)
