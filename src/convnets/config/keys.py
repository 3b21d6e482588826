"""Parameters as conf/ gives them, and keys that no pipeline reads (typos), named with
the closest known key and a ``--params=`` to copy."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from convnets.config.loader import ProjectConfigLoader, merged
from convnets.parameters import ParameterError


def conf_parameters(
    conf_source: str | Path,
    env: str | None = None,
    overrides: list[str] | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of ``conf_source`` as ``kedro run`` reads them: base, then ``env``.

    ``overrides`` are ``key.path=value`` items, as ``kedro run --params`` takes them, or
    the nested mapping Kedro's command line makes of them.
    """
    import warnings  # noqa: PLC0415

    from omegaconf import OmegaConf  # noqa: PLC0415

    with warnings.catch_warnings():
        # Kedro's own use of an OmegaConf call deprecated since: not the user's concern.
        warnings.filterwarnings("ignore", "register_new_resolver", UserWarning)
        loader = ProjectConfigLoader(
            conf_source=str(conf_source),
            base_env="base",
            default_run_env=env or "base",
            merge_strategy={"parameters": "soft"},
            runtime_params=(
                dict(overrides)
                if isinstance(overrides, Mapping)
                else OmegaConf.to_container(OmegaConf.from_dotlist(overrides or []))
            ),
        )
        return loader["parameters"]


# ``${runtime_params:predict_dir, ...}`` in conf/: a top-level key set only by --params.
_RUNTIME_PARAM = re.compile(r"\$\{\s*runtime_params:\s*([A-Za-z_][\w.]*)")
_CONF_SUFFIXES = (".yml", ".yaml", ".json")


def environments(conf_source: str | Path) -> list[str]:
    """The environments of ``conf_source``: its folders (base, local, quick, ...)."""
    return sorted(
        entry.name
        for entry in Path(conf_source).iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )


def check_environment(conf_source: str | Path, env: str, fix: Callable[[str], str]) -> None:
    """``ParameterError`` naming ``env`` and the environments there, if it has no folder.

    ``fix(name)`` is the command with ``--env=name``, for the hint.
    """
    known = environments(conf_source)
    if env in known:
        return
    close = difflib.get_close_matches(env, [name for name in known if name != "base"], n=1)
    hint = f" Fix: {fix(close[0])}" if close else ""
    raise ParameterError(
        f"There is no environment {env!r}: no folder {Path(conf_source) / env}. The "
        f"environments are the folders of {conf_source}: {', '.join(known)}.{hint}"
    )


def runtime_parameter_names(conf_source: str | Path) -> set[str]:
    """The top-level names that conf/ reads with ``${runtime_params:<name>}``."""
    names = set()
    for path in Path(conf_source).rglob("*"):
        if path.suffix in _CONF_SUFFIXES and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            names.update(match.split(".")[0] for match in _RUNTIME_PARAM.findall(text))
    return names


def known_parameters(conf_source: str | Path) -> dict[str, Any]:
    """Every key a run can read: conf/base's parameters, and the runtime parameters
    (``None``: a value of any form)."""
    known: dict[str, Any] = dict.fromkeys(runtime_parameter_names(conf_source))
    known.update(conf_parameters(conf_source))
    return known


class UnknownKey(NamedTuple):
    path: tuple[str, ...]  # the key as given
    choices: tuple[str, ...]  # the keys known at that level
    suggestion: str | None  # the closest of them, if one is close

    @property
    def corrected(self) -> tuple[str, ...] | None:
        return None if self.suggestion is None else (*self.path[:-1], self.suggestion)


def unknown_keys(
    given: Mapping[str, Any], known: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[UnknownKey]:
    """The keys of ``given`` that ``known`` does not have, at any depth; below a known
    key whose value is not a mapping (a list, a name, a runtime parameter) anything goes."""
    found = []
    for name, value in given.items():
        key = str(name)
        if key.startswith("_"):  # OmegaConf's variables, removed from the parameters
            continue
        if key not in known:
            close = difflib.get_close_matches(key, [str(name) for name in known], n=1)
            choices = tuple(map(str, known))
            found.append(UnknownKey((*prefix, key), choices, next(iter(close), None)))
        elif isinstance(value, Mapping) and isinstance(known[key], Mapping):
            found += unknown_keys(value, known[key], (*prefix, key))
    return found


def flat_items(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``: ``--params`` items."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping) and value:
            flat.update(flat_items(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _params_text(value: Any) -> str:
    if isinstance(value, list | tuple):  # the list forms a command line can carry
        numbers = all(isinstance(item, int) for item in value)
        return ("x" if numbers else " ").join(map(str, value))
    return "null" if value is None else str(value)


def _explain_unknown(unknown: UnknownKey, where: str, moved: tuple[str, ...] | None = None) -> str:
    key = ".".join(unknown.path)
    parent = ".".join(unknown.path[:-1])
    what = f"no key {unknown.path[-1]} in {parent}" if parent else "no such parameter"
    if moved:
        advice = f"did you mean {'.'.join(moved)}?"
    elif unknown.suggestion is not None:
        advice = f"did you mean {'.'.join(unknown.corrected)}?"
    else:
        advice = f"the keys there are {', '.join(sorted(unknown.choices))}."
    return f"{key} ({where}): {what}, so it would be ignored; {advice}"


def _replace_key(nested: Mapping[str, Any], path: tuple[str, ...], new: str) -> dict[str, Any]:
    """``nested`` with the key at ``path`` renamed ``new``; a key written right wins."""
    result = dict(nested)
    if len(path) == 1:
        moved = result.pop(path[0])
        written = result.get(new, moved)
        both = isinstance(written, Mapping) and isinstance(moved, Mapping)
        result[new] = merged(moved, written) if both else written
    else:
        result[path[0]] = _replace_key(result[path[0]], path[1:], new)
    return result


def check_parameter_keys(
    conf_source: str | Path,
    env: str,
    runtime_params: Mapping[str, Any] | None,
    fix: Callable[[str], str] | None = None,
) -> None:
    """``ParameterError`` listing every key, in ``--params`` and in conf/<env>/'s
    parameter files, that no pipeline reads, with the known key it is closest to.

    ``fix(params)`` is the command with ``--params=params``, for a hint to copy.
    """
    known = known_parameters(conf_source)
    lines = []
    folder = Path(conf_source) / env
    if env != "base" and folder.is_dir():
        import yaml  # noqa: PLC0415

        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.suffix not in _CONF_SUFFIXES or not any(
                part.startswith("parameters") for part in relative.parts
            ):
                continue
            try:
                values = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue  # Kedro's loader reports it
            if isinstance(values, Mapping):
                lines += [
                    _explain_unknown(unknown, str(path)) + " Fix: rename or remove it there"
                    for unknown in unknown_keys(values, known)
                ]
    given = runtime_params or {}
    problems = unknown_keys(given, known)
    corrected = dict(given)
    for unknown in sorted(problems, key=lambda item: -len(item.path)):  # deepest first
        if unknown.suggestion is not None:
            corrected = _replace_key(corrected, unknown.path, unknown.suggestion)
    for unknown in problems:
        moved = None if unknown.suggestion else _found_elsewhere(known, unknown.path)
        line = _explain_unknown(unknown, "--params", moved)
        if moved:  # the key exists, at another depth of the same section
            value = _params_text(_lookup(given, unknown.path))
            line += f" Fix: --params={'.'.join(moved)}={value}"
        elif unknown.suggestion is not None:
            parent = "".join(f"{part}." for part in unknown.path[:-1])
            items = flat_items({unknown.suggestion: _lookup(given, unknown.path)}, parent)
            line += " Fix: --params=" + ",".join(
                f"{name}={_params_text(value)}" for name, value in items.items()
            )
        lines.append(line)
    if not lines:
        return
    message = (
        "Unknown parameters, nothing was run:\n  "
        + "\n  ".join(lines)
        + f"\nThe known keys are those of {Path(conf_source) / 'base'}/parameters*.yml and "
        "the runtime parameters that conf/ reads: "
        + ", ".join(sorted(runtime_parameter_names(conf_source)))
        + "."
    )
    if problems and fix is not None and all(item.suggestion for item in problems):
        params = ",".join(
            f"{name}={_params_text(value)}" for name, value in flat_items(corrected).items()
        )
        message += f"\nFix: {fix(params)}"
    raise ParameterError(message)


def _found_elsewhere(known: Mapping[str, Any], path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The one known key named as ``path``'s last part within ``path``'s top section
    (``catdog_fast.training.use_ema`` -> ``catdog_fast.training.optimizer.use_ema``)."""
    section = known.get(path[0])
    if len(path) < 2 or not isinstance(section, Mapping):
        return None
    found = [
        (path[0], *name.split("."))
        for name in flat_items(section)
        if name.split(".")[-1] == path[-1]
    ]
    return found[0] if len(found) == 1 else None


def _lookup(nested: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        nested = nested[part]
    return nested
