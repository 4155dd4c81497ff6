"""Where the shipped Hydra configs are, the training config composed outside a Hydra app, and
what a user is told when Hydra cannot compose one.

A source checkout reads the project's top-level ``conf/``; an installed wheel carries the same
files as ``qa_seq2seq/conf/`` (``pyproject.toml`` maps one onto the other), so every entry point
finds them from any directory.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa_seq2seq.compatibility import wrap_hydra_reporting
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.reporting import refused_write

_PACKAGED = Path(__file__).resolve().parent / "conf"
CONF_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1] / "conf"


def compose(overrides: list[str], return_hydra_config: bool = False,
            config_name: str = "train") -> Any:
    """``conf/<config_name>.yaml`` composed with ``overrides``, as the entry point would compose
    it; an unknown key, group or option is one :class:`ConfigError` (:func:`explain`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name, overrides=overrides,
                                 return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(explain(e, overrides, config_name)) from None


# Hydra refusing to set a key the config does not have (it then advises ``+key=value``).
NOT_IN_STRUCT = re.compile(r"Could not override '(?P<key>[^']+)'.*is not in struct", re.S)


def explain(error: BaseException, overrides: list[str], config_name: str) -> str:
    """What to tell a user whose overrides Hydra could not compose: for a key the config does
    not have, the nearest keys it has (Hydra's advice to add it with ``+`` would only fail
    later: nothing reads it); otherwise Hydra's message, with where a moved key went."""
    text = f"{error}\n{error.__cause__}" if error.__cause__ is not None else str(error)
    found = NOT_IN_STRUCT.search(text)
    if found is None or (config_name == "evaluate" and found["key"].startswith("data.")):
        return f"{text}{moved_keys_hint(overrides)}"  # evaluate adds data keys with +, as advised
    from hydra.core.global_hydra import GlobalHydra

    key = found["key"]
    GlobalHydra.instance().clear()  # inside a failed Hydra app: compose again from scratch
    try:
        others = [o for o in overrides if "=" in o and not o.startswith("-") and key not in o]
        cfg = compose(others, config_name=config_name)  # flags (-m, --config-dir) left out
        known = dotted_keys(cfg)
    except ConfigError:
        known = []
    if key in known:  # a mapping given keys it does not have: ++ adds them
        given = next((o.lstrip("+~") for o in overrides if o.lstrip("+~").startswith(key)), key)
        return (f"{key} is a mapping, and '=' only sets the keys it has; to add yours, merged "
                f"into it: '++{given}'")
    near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; the nearest: {', '.join(near)}" if near else ""
    return (f"unknown key {key}{hint}. Every key with its meaning: "
            f"python -m qa_seq2seq.{config_name} --help{moved_keys_hint(overrides)}")


def dotted_keys(cfg: Any) -> list[str]:
    """Every key of a composed config, ``model.net.hidden_size`` style."""
    from omegaconf import OmegaConf

    def walk(node: Any, prefix: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        return [path for name, value in node.items()
                for path in (f"{prefix}{name}", *walk(value, f"{prefix}{name}."))]

    return walk(OmegaConf.to_container(cfg, resolve=False), "")


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


def unmakeable(error: OSError) -> str | None:
    """The message for a run folder that cannot be made where it is asked for
    (``hydra.run.dir=/proc/x``: a parent that takes no folders), else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, FileNotFoundError | NotADirectoryError) and error.filename:
            return (f"{error.filename}: cannot be made ({error.strerror}): give hydra.run.dir "
                    "a folder that can be (or leave it to its default, under outputs/)")
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def hydra_command(config_name: str, version: str) -> None:
    """What a ``hydra.main`` entry point (of ``conf/<config_name>``) runs first: ``--version``
    answered (the package's ``version``), and compose errors made one message, exit status 2."""
    if "--version" in sys.argv[1:]:
        print(f"qa-seq2seq-{config_name} {version}")
        sys.exit(0)
    compose_errors_exit_2(config_name)


def compose_errors_exit_2(config_name: str) -> None:
    """Make a config Hydra cannot compose (an unknown key, a bad override, an option missing from
    a group) exit with status 2 like every other user error, said as :func:`explain` says it;
    Hydra itself exits 1. Call before a ``hydra.main`` entry point (of ``conf/<config_name>``)
    runs.

    Hydra reports these as ``CompactHydraException`` from inside ``run_and_report``; the shim
    catches exactly those, around the function that Hydra hands it, and leaves the rest of
    Hydra's reporting as it is.
    """
    from hydra.errors import CompactHydraException

    def exit_2(original: Callable[[Callable[[], Any]], Any]) -> Callable[[Callable[[], Any]], Any]:
        def run_and_report(func: Callable[[], Any]) -> Any:
            def composed() -> Any:
                try:
                    return func()
                except CompactHydraException as e:
                    if os.environ.get("HYDRA_FULL_ERROR") == "1":
                        raise
                    print(f"error: {explain(e, sys.argv[1:], config_name)}", file=sys.stderr)
                    sys.exit(2)
                except OSError as e:  # Hydra making the run directory and its .hydra/ files
                    if (message := refused_write(e) or unmakeable(e)) is None:
                        raise
                    print(f"error: {message}", file=sys.stderr)
                    sys.exit(2)

            return original(composed)

        return run_and_report

    wrap_hydra_reporting(exit_2)
