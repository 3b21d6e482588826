"""The project's config loader: Kedro's ``OmegaConfigLoader`` and the registry's
training pipelines, so that no file of ``conf/`` lists them.

- ``${training_pipelines:}`` in a parameter file is the registry's training pipelines
  (the report's ``report.training_pipelines``).
- ``conf/<env>/training_overrides.yml`` holds, per pipeline package that trains, keys
  merged into the ``training`` section of every training pipeline of that package
  (``--env=quick``'s epochs). YAML anchors are resolved file by file, so a section of
  ``conf/quick/parameters.yml`` would reach one pipeline only, and a new pipeline would
  be missed. ``--params`` still win over them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kedro.config import MissingConfigException, OmegaConfigLoader

from convnets.parameters import ParameterError
from convnets.pipeline_registry import training_packages, training_pipelines

TRAINING_OVERRIDES = "training_overrides"
TRAINING_SECTION = "training"


def merged(value: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` with ``changes`` merged in at any depth (OmegaConf's soft merge of dicts;
    the values here are resolved already and must not be resolved again)."""
    result = dict(value)
    for key, change in changes.items():
        if isinstance(change, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], change)
        else:
            result[key] = change
    return result


def with_training_overrides(
    parameters: Mapping[str, Any],
    overrides: Mapping[str, Any],
    packages: Mapping[str, str],
    source: str = TRAINING_OVERRIDES,
) -> dict[str, Any]:
    """``parameters`` with ``overrides[package]`` merged into the ``training`` section of
    each pipeline of ``packages`` (name: package) that trains with that package.

    A pipeline without a training section is left alone: the parameter checks name it.
    """
    unknown = sorted(set(overrides) - set(packages.values()))
    if unknown:
        raise ParameterError(
            f"{source}: no training pipeline trains with {', '.join(unknown)}; the keys "
            f"there are the packages that train: {', '.join(sorted(set(packages.values())))}"
        )
    trainings = {
        name: parameters[name][TRAINING_SECTION]
        for name in packages
        if isinstance(parameters.get(name), Mapping)
        and isinstance(parameters[name].get(TRAINING_SECTION), Mapping)
    }
    for package, keys in overrides.items():
        if not isinstance(keys, Mapping):
            raise ParameterError(
                f"{source}: {package} must map training options to values (like "
                f"'{package}: {{epochs: 2}}'), not {keys!r}; edit that file"
            )
        known = {
            key
            for name, training in trainings.items()
            if packages[name] == package
            for key in training
        }
        typos = sorted(set(keys) - known) if known else []
        if typos:
            raise ParameterError(
                f"{source}: {', '.join(f'{package}.{key}' for key in typos)} is not a "
                f"training option of the pipelines that train with {package}; edit that "
                f"file: the options are {', '.join(sorted(known))}"
            )
    changes = {
        name: {TRAINING_SECTION: copy.deepcopy(overrides[package])}  # no value shared
        for name, package in packages.items()
        if package in overrides and name in trainings
    }
    return merged(parameters, changes)


class ProjectConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` with the ``training_pipelines`` resolver and the
    environment's ``training_overrides`` applied to the parameters (module docstring)."""

    def __init__(self, conf_source: Any, *args: Any, **kwargs: Any) -> None:
        patterns = {
            TRAINING_OVERRIDES: [
                f"{TRAINING_OVERRIDES}*",
                f"{TRAINING_OVERRIDES}*/**",
                f"**/{TRAINING_OVERRIDES}*",
            ],
            **(kwargs.pop("config_patterns", None) or {}),
        }
        resolvers = {
            "training_pipelines": lambda: list(training_pipelines()),
            **(kwargs.pop("custom_resolvers", None) or {}),
        }
        super().__init__(
            conf_source, *args, config_patterns=patterns, custom_resolvers=resolvers, **kwargs
        )

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key != "parameters":
            return config
        try:
            overrides = super().__getitem__(TRAINING_OVERRIDES)
        except MissingConfigException:  # no such file in base nor in the environment
            return config
        env = self.env or self.default_run_env
        parameters = with_training_overrides(
            config, overrides, training_packages(), f"conf/{env}/{TRAINING_OVERRIDES}.yml"
        )
        return merged(parameters, self.runtime_params or {})  # --params win
