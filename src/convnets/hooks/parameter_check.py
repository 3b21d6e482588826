"""The run's parameters, checked before any node: every bad key at once, with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from convnets.parameters import (
    CatsVsDogsData,
    ImageInput,
    InvalidParameters,
    MnistTraining,
    ParameterError,
    check_parameter_keys,
    image_input_costs,
    mnist_costs,
)
from convnets.pipeline_registry import TRAINING_PIPELINES  # one MLflow run each

PARAMS_PREFIX = "params:"
# Pipelines that read finished runs or saved models, or time the machine: never beside
# a training in one kedro run.
READERS_OF_RUNS = ("predict", "explain", "report", "book_epoch")


class ParameterCheck:
    """Reports every parameter section of the run that Kedro could not parse.

    Kedro's parameter validation parses each ``params:`` input into the model its
    node declares; its error names the section and then pydantic's own report, with
    keys relative to the section and no fix. ``convnets.context.ProjectContext`` keeps a
    failure as ``InvalidParameters`` instead, and this check raises one
    ``ParameterError`` that names each bad key in full with a ``--params=`` that fixes
    it, before any node and before kedro-mlflow opens a run that the error would
    leave RUNNING. Before them: keys no pipeline reads (typos; the CLI checks them
    first, this covers sessions started otherwise); after them: sizes that the disk or
    the memory cannot hold, with what they would cost.
    """

    conf_source: str | None = None

    # Called by GuardHook, at the hooks of the same names.
    def after_context_created(self, context: KedroContext) -> None:
        self.conf_source = context.config_loader.conf_source

    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        env = run_params.get("env")
        env_option = f" --env={env}" if env and env != "local" else ""
        command = f"kedro run --pipelines={','.join(pipelines)}{env_option}"
        if self.conf_source and Path(self.conf_source).is_dir():
            check_parameter_keys(
                self.conf_source,
                env or "local",
                run_params.get("runtime_params"),
                lambda params: f"{command} --params={params}",
            )
        names = run_params.get("pipeline_names") or []
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
        sections = sorted(name for name in pipeline.inputs() if name.startswith(PARAMS_PREFIX))
        problems: list[str] = []
        for dataset in sections:
            value = catalog.load(dataset)
            if isinstance(value, InvalidParameters):
                problems.extend(value.explain(dataset.removeprefix(PARAMS_PREFIX)))
        if not problems:
            problems = self._costs(sections, catalog)
        if problems:
            raise ParameterError(
                "Invalid parameters, nothing was run:\n  "
                + "\n  ".join(problems)
                + "\nSet them in conf/<env>/parameters_*.yml or on the command line: "
                f"{command} --params=<key>=<value>"
            )

    @staticmethod
    def _costs(sections: list[str], catalog: DataCatalog) -> list[str]:
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
