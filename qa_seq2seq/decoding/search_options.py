"""Which search answers, and with which options: the one list of search names (``decode=``,
``--decode``, the API, validation, the numpy runtime) and the checks on their options. Imports no
torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from qa_seq2seq.compatibility import current
from qa_seq2seq.errors import ConfigError

# The one list of searches: their names (``decode=``, ``--decode``, the API), and the function
# each names in qa_seq2seq.decoding.search, which a stored ``decode`` config must name exactly
# (looked up, never imported from the config). The numpy runtime implements those it can under the
# same names.
SEARCH_TARGETS = {"greedy": "qa_seq2seq.decoding.search.greedy_search",
                  "beam": "qa_seq2seq.decoding.search.beam_search",
                  "sample": "qa_seq2seq.decoding.search.sample"}


def searches_in(module: Any) -> dict[str, Callable]:
    """``{name: function}`` for each search of SEARCH_TARGETS that ``module`` defines under the
    same function name (qa_seq2seq.decoding.search: all; the numpy runtime: greedy and beam)."""
    functions = {name: target.rsplit(".", 1)[1] for name, target in SEARCH_TARGETS.items()}
    return {name: getattr(module, function) for name, function in functions.items()
            if hasattr(module, function)}


def search_options(search: Callable) -> dict[str, Any]:
    """The options of a search function and their defaults: its arguments after model, src and
    lengths, without ``initial_state`` (a tensor, not a decoding option)."""
    parameters = list(inspect.signature(search).parameters.values())[3:]
    return {p.name: p.default for p in parameters if p.name != "initial_state"}


def check_type(key: str, value: Any, default: Any) -> None:
    """``value`` must be of its default's kind (an int also for a float); a None default (an
    optional int or float: ``max_length_ratio``, ``seed``) takes a number or None."""
    if default is None:
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        kind = "a number or null"
    elif isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        kind = "a number"
    else:
        ok, kind = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise ConfigError(f"{key}={value!r}: must be {kind} (default {default!r})")


def decode_choice(config: dict[str, Any] | None, where: str) -> tuple[str, dict[str, Any]]:
    """The search a ``decode`` config (``conf/decode/*.yaml``, resolved) names, and its options;
    None: greedy with its defaults (``where`` names the config's origin for the error)."""
    options = dict(config or {"_target_": SEARCH_TARGETS["greedy"]})
    target = current(options.pop("_target_", ""))
    options.pop("_partial_", None)
    for name, known in SEARCH_TARGETS.items():
        if target == known:
            return name, options
    raise ConfigError(f"{where} names {target!r}, not one of {', '.join(SEARCH_TARGETS)}: pass "
                      "decode=...")


def choose_search(stored: dict[str, Any] | None, decode: str | None, options: dict[str, Any],
                  searches: dict[str, Callable]) -> tuple[str, dict[str, Any]]:
    """The search to run and its checked options. ``decode=None`` (or the stored search's name)
    starts from the ``stored`` config's options; naming another starts from its defaults."""
    stored_name, stored_options = decode_choice(stored, "the checkpoint's decode config")
    if decode is None or decode == stored_name:
        decode, options = stored_name, {**stored_options, **options}
    if decode not in searches:
        raise ConfigError(f"decode={decode!r}: choose from {', '.join(searches)}")
    accepted = search_options(searches[decode])
    if unknown := sorted(set(options) - set(accepted)):
        owners = [name for name, search in searches.items()
                  if set(unknown) <= set(search_options(search))]
        fix = f" (an option of decode={owners[0]}: choose that search with it)" if owners else ""
        raise ConfigError(f"{', '.join(unknown)}: not an option of decode={decode}{fix}; its "
                          f"options are {', '.join(accepted)}")
    for key, value in options.items():
        check_type(key, value, accepted[key])
    return decode, options
