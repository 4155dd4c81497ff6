"""Where the shipped Hydra configs are, the training config composed outside a Hydra app, and
what a user is told when Hydra cannot compose one.

A source checkout reads the project's top-level ``conf/``; an installed wheel carries the same
files as ``qa_seq2seq/conf/`` (``pyproject.toml`` maps one onto the other), so every entry point
finds them from any directory.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa_seq2seq.errors import ConfigError, refused_write

_PACKAGED = Path(__file__).resolve().parent / "conf"
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1] / "conf"


def compose(overrides: list[str], return_hydra_config: bool = False) -> Any:
    """``conf/train.yaml`` composed with ``overrides``, as ``train`` would compose it; an unknown
    key, group or option is one :class:`ConfigError` (naming a key's new place if it moved)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose("train", overrides=overrides,
                                 return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"{e}{moved_keys_hint(overrides)}") from None


def moved_keys_hint(overrides: list[str]) -> str:
    """A line naming the new place of each override written with a network key under ``model``
    (``model.hidden_size``, ``model/cell``: in the first versions the network's keys and groups
    sat there; now under ``model.net``, as in ``conf/model/net/``), or ''."""
    net_conf = CONF_DIR / "model" / "net"
    text = (net_conf / "seq2seq.yaml").read_text()
    names = {*re.findall(r"^(\w+):", text, re.M), *(p.name for p in net_conf.iterdir() if p.is_dir())}
    pattern = re.compile(rf"^[+~]*(model[./](?:{'|'.join(sorted(names))})\b)")
    moved = [m[1] for o in overrides if (m := pattern.match(o))]
    if not moved:
        return ""
    fixes = ", ".join(f"{old} -> {old[:6]}net{old[5]}{old[6:]}" for old in dict.fromkeys(moved))
    return f"\nThe network's keys moved under model.net: {fixes}"


def compose_errors_exit_2() -> None:
    """Make a config Hydra cannot compose (an unknown key, a bad override, an option missing from
    a group) exit with status 2 like every other user error; Hydra itself exits 1. Call before a
    ``hydra.main`` entry point runs.

    Hydra reports these as ``CompactHydraException`` from inside ``run_and_report``; the shim
    catches exactly those, around the function that Hydra hands it, and leaves the rest of
    Hydra's reporting as it is.
    """
    import hydra._internal.utils as hydra_utils
    from hydra.errors import CompactHydraException

    original = hydra_utils.run_and_report
    if getattr(original, "exits_2", False):
        return

    def run_and_report(func: Callable[[], Any]) -> Any:
        def composed() -> Any:
            try:
                return func()
            except CompactHydraException as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                cause = f"\n{e.__cause__}" if e.__cause__ is not None else ""
                print(f"error: {e}{cause}{moved_keys_hint(sys.argv[1:])}", file=sys.stderr)
                sys.exit(2)
            except OSError as e:  # Hydra making the run directory and its .hydra/ files
                if (message := refused_write(e)) is None:
                    raise
                print(f"error: {message}", file=sys.stderr)
                sys.exit(2)

        return original(composed)

    run_and_report.exits_2 = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report
