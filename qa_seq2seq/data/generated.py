"""Writing generated data sets (toy, arith, passages): JSON lines written atomically, and a
folder generated again when the settings it was made with changed."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Example = dict[str, str]  # {"question", "answer", "family", ...}


def write_jsonl(path: Path, rows: list[Example]) -> None:
    """One JSON object per line, written atomically: a killed run never leaves half a split, and
    runs that generate the same split at once (a sweep's first jobs) each rename a whole file."""
    _write_atomically(path, "".join(json.dumps(row) + "\n" for row in rows))


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def ensure_generated(out_dir: str | Path, generate: Callable[..., dict[str, list[Example]]],
                     splits: Iterable[str], seed: int = 0, **settings: Any) -> Path:
    """Write ``generate(seed, **settings)``'s splits under ``out_dir`` unless all of ``splits``
    exist and were made with the same seed and settings (``generated.json`` says which): a
    changed setting regenerates the files instead of training on the old ones."""
    out_dir = Path(out_dir)
    made = {"seed": seed, **settings}
    manifest = out_dir / "generated.json"
    current = all((out_dir / f"{name}.jsonl").exists() for name in splits) and (
        _read_json(manifest) == made if settings else True)
    if not current:
        if manifest.exists():
            log.warning("%s was generated with other settings: generating it again with %s",
                        out_dir, made)
        for name, rows in generate(seed, **settings).items():
            write_jsonl(out_dir / f"{name}.jsonl", rows)
        if settings:
            _write_atomically(manifest, json.dumps(made, sort_keys=True) + "\n")
    return out_dir


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
