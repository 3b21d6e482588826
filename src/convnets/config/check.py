"""Is this run's configuration valid? The one answer, asked before any work starts.

``check_run`` is called by ``cli.py`` before the pipelines (and TensorFlow) are imported:
the environment, keys no pipeline reads, pipeline names, which pipelines may share a run,
and the values of every parameter section the run's pipelines parse (declared in the
registry), each bad key with a fix to copy. ``ParameterCheck`` asks the same questions in
a Kedro session started otherwise (a notebook, ``KedroSession.run``), where Kedro has
parsed the sections already, and adds what the sizes would cost on this machine.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from convnets.config.costs import image_input_costs, mnist_costs
from convnets.config.keys import (
    check_environment,
    check_parameter_keys,
    conf_parameters,
)
from convnets.parameters import (
    CatsVsDogsData,
    ImageInput,
    InvalidParameters,
    MnistTraining,
    ParameterError,
    describe_errors,
)
from convnets.pipeline_registry import (
    DEFAULT_PIPELINE,
    REGISTRY,
    TRAINING_PIPELINES,  # one MLflow run each
    sections_of,
)

PARAMS_PREFIX = "params:"
# Pipelines that read finished runs or saved models, or time the machine: never beside
# a training in one kedro run.
READERS_OF_RUNS = ("predict", "explain", "report", "book_epoch")


class UnknownPipeline(ParameterError):
    """A pipeline name the registry does not have."""


def run_command(pipelines: list[str], env: str | None) -> str:
    """``kedro run`` with these pipelines and environment, for the hints."""
    env_option = f" --env={env}" if env and env != "local" else ""
    return f"kedro run --pipelines={','.join(pipelines)}{env_option}"


def check_pipeline_names(names: list[str]) -> None:
    """``UnknownPipeline`` for a name the registry does not have, with the close ones."""
    for name in names:
        if name == "__default__" or name in REGISTRY:
            continue
        matches = difflib.get_close_matches(name, list(REGISTRY))
        suggestion = (
            "Did you mean one of these instead?\n    " + "\n    ".join(matches) if matches else ""
        )
        raise UnknownPipeline(
            f"Failed to find the pipeline named '{name}'. The pipelines are those of "
            f"kedro registry list: {', '.join(REGISTRY)}. {suggestion}"
        )


def check_combination(names: list[str]) -> None:
    """Pipelines that must not share one ``kedro run``."""
    trained = [name for name in names if name in TRAINING_PIPELINES]
    readers = [name for name in names if name in READERS_OF_RUNS]
    if trained and readers:
        # Kedro does not order them (no dataset links them), and the run's pipeline
        # tag would name neither, so the report could not find it.
        raise ParameterError(
            f"Run {', '.join(readers)} in a kedro run of its own, not with "
            f"{', '.join(trained)}: Kedro would not order it after the training, and "
            f"the report could not find a run of both. Run kedro run "
            f"--pipelines={trained[0]}, then kedro run --pipelines={readers[0]}."
        )
    if len(trained) > 1:
        # One MLflow run per kedro run: two models' metrics would share its names.
        raise ParameterError(
            f"Run one training pipeline at a time, not {', '.join(trained)}: they would "
            "log their metrics under the same names in one MLflow run."
        )


def invalid_parameters(problems: list[str], command: str) -> ParameterError:
    return ParameterError(
        "Invalid parameters, nothing was run:\n  "
        + "\n  ".join(problems)
        + "\nSet them in conf/<env>/parameters_*.yml or on the command line: "
        f"{command} --params=<key>=<value>"
    )


def _section(parameters: Mapping[str, Any], key: str) -> Any:
    value: Any = parameters
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None  # a missing section: Kedro names it
        value = value[part]
    return value


def section_problems(parameters: Mapping[str, Any], sections: Mapping[str, type]) -> list[str]:
    """One line per bad value of ``sections`` (key: model) in ``parameters``."""
    from pydantic import ValidationError  # noqa: PLC0415

    problems: list[str] = []
    for key, model in sorted(sections.items()):
        value = _section(parameters, key)
        if value is None:
            continue
        try:
            model.model_validate(value)
        except ValidationError as error:
            problems += describe_errors(key, value, error)
    return problems


def check_run(
    conf_source: str | Path,
    env: str | None,
    runtime_params: Mapping[str, Any] | None,
    pipelines: list[str],
    command_with: Callable[[str, str, str | None], str],
) -> None:
    """``ParameterError`` for the first kind of problem this run's configuration has.

    ``command_with(option, value, short)`` is the command as typed with ``option=value``
    in place of that option, for a fix to copy. Reads conf/ only: nothing is imported
    that a refused run does not need.
    """
    if env:
        check_environment(conf_source, env, lambda name: command_with("--env", name, "-e"))
    check_parameter_keys(
        conf_source,
        env or "local",
        runtime_params,
        lambda params: command_with("--params", params, None),
    )
    names = pipelines or [DEFAULT_PIPELINE]
    check_pipeline_names(names)
    check_combination(names)
    parameters = conf_parameters(conf_source, env or "local", runtime_params)
    problems = section_problems(parameters, sections_of(names))
    if problems:
        raise invalid_parameters(problems, run_command(names, env))


class ParameterCheck:
    """``check_run``'s questions within a Kedro session, and what sizes would cost.

    Kedro's parameter validation parses each ``params:`` input into the model its node
    declares; ``config.context.ProjectContext`` keeps a failure as ``InvalidParameters``,
    and this check raises one ``ParameterError`` that names each bad key in full with a
    ``--params=`` that fixes it, before any node and before kedro-mlflow opens a run that
    the error would leave RUNNING.
    """

    conf_source: str | None = None

    # Called by GuardHook, at the hooks of the same names.
    def after_context_created(self, context: Any) -> None:
        self.conf_source = context.config_loader.conf_source

    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        env = run_params.get("env")
        command = run_command(pipelines, env)
        if self.conf_source and Path(self.conf_source).is_dir():
            check_parameter_keys(
                self.conf_source,
                env or "local",
                run_params.get("runtime_params"),
                lambda params: f"{command} --params={params}",
            )
        check_combination(run_params.get("pipeline_names") or [])
        sections = sorted(name for name in pipeline.inputs() if name.startswith(PARAMS_PREFIX))
        problems: list[str] = []
        for dataset in sections:
            value = catalog.load(dataset)
            if isinstance(value, InvalidParameters):
                problems.extend(value.explain(dataset.removeprefix(PARAMS_PREFIX)))
        if not problems:
            problems = self._costs(sections, catalog)
        if problems:
            raise invalid_parameters(problems, command)

    @staticmethod
    def _costs(sections: list[str], catalog: Any) -> list[str]:
        """Image and batch sizes that the disk or the memory cannot hold."""
        values = {name.removeprefix(PARAMS_PREFIX): catalog.load(name) for name in sections}
        split = values.get("cats_vs_dogs")
        problems = []
        for key, value in values.items():
            if isinstance(value, ImageInput) and isinstance(split, CatsVsDogsData):
                namespace = key.removesuffix(".input")
                decoded = catalog.get(f"{namespace}.cats_vs_dogs_decoded")
                cache = getattr(decoded, "_path", None)
                problems += image_input_costs(key, value, split, cache)
            elif isinstance(value, MnistTraining):
                problems += mnist_costs(key, value)
        return problems
