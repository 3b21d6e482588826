"""Project hooks: a run's parameters are all checked, and explained, before its first node."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from pydantic import BaseModel

from convnets.parameters import InvalidParameters, ParameterError

logger = logging.getLogger(__name__)

PARAMS_PREFIX = "params:"
# The registered pipelines that train a model.
TRAINING_PIPELINES = ("mnist", "fashion_mnist", "catdog", "catdog_baseline", "catdog_fast")


class ParameterHook:
    """Reports every parameter section of the run that Kedro could not parse.

    Kedro's parameter validation parses each ``params:`` input into the model its
    node declares; its error names the section and then pydantic's own report, with
    keys relative to the section and no fix. The models keep a failure as
    ``InvalidParameters`` instead (``convnets.parameters``), and this hook raises one
    ``ParameterError`` that names each bad key in full with a ``--params=`` that fixes
    it, before any node and before kedro-mlflow opens a run that the error would
    leave RUNNING.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        trained = [
            name for name in run_params.get("pipeline_names") or [] if name in TRAINING_PIPELINES
        ]
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
        if problems:
            pipelines = run_params.get("pipeline_names") or ["__default__"]
            raise ParameterError(
                "Invalid parameters, nothing was run:\n  "
                + "\n  ".join(problems)
                + "\nSet them in conf/<env>/parameters_*.yml or on the command line: "
                f"kedro run --pipelines={','.join(pipelines)} --params=<key>=<value>"
            )


class MlflowHookWithTypedParameters(MlflowHook):
    """kedro-mlflow's hook, logging typed parameters by key as it logs dicts.

    Its ``before_node_run`` flattens only dicts, so a parsed section would be logged
    as one long string; it sees the same values here as their dicts. Registered in
    ``settings.HOOKS`` in place of the plugin's own instance.
    """

    @hook_impl
    def before_node_run(
        self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool
    ) -> None:
        as_dicts = {
            name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            for name, value in inputs.items()
        }
        super().before_node_run(node=node, catalog=catalog, inputs=as_dicts, is_async=is_async)
