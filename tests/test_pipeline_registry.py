"""The registry: one pipeline per package, node functions only in pipelines/, the
training pipelines declared where they are registered, --env=quick shortening every
training pipeline, not only the one its author tried; and a training pipeline added in
one registry entry and one parameter section, picked up by everything that reads them."""

import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import convnets
import convnets.pipelines
from convnets.pipeline_registry import (
    REGISTRY,
    TRAINING_PIPELINES,
    register_pipelines,
    training_packages,
)
from tests.conftest import PROJECT_ROOT, conf_parameters, make_kedro_project

LIBRARY_PACKAGES = ("convnets.pipelines",)


def _pipeline_packages() -> list[str]:
    return sorted(
        info.name for info in pkgutil.iter_modules(convnets.pipelines.__path__) if info.ispkg
    )


def test_each_pipeline_package_has_nodes_and_one_create_pipeline():
    for name in _pipeline_packages():
        package = importlib.import_module(f"convnets.pipelines.{name}")
        importlib.import_module(f"convnets.pipelines.{name}.nodes")
        pipeline_module = importlib.import_module(f"convnets.pipelines.{name}.pipeline")
        assert package.create_pipeline is pipeline_module.create_pipeline, name
        creators = [attr for attr in vars(pipeline_module) if attr.startswith("create_")]
        assert creators == ["create_pipeline"], name


def test_every_node_function_lives_in_a_pipeline_package_nodes_module():
    for name, pipeline in register_pipelines().items():
        for node in pipeline.nodes:
            module = node.func.__module__
            assert module.startswith("convnets.pipelines."), (name, node.name, module)
            assert module.endswith(".nodes"), (name, node.name, module)


def test_library_modules_define_no_node_used_by_a_pipeline():
    node_functions = {
        node.func for pipeline in register_pipelines().values() for node in pipeline.nodes
    }
    library = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(convnets.__path__, "convnets.")
        if not info.name.startswith(LIBRARY_PACKAGES)
    ]
    for module in library:
        for value in vars(module).values():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert value not in node_functions, f"{module.__name__}.{value.__name__}"


def test_the_training_pipelines_are_the_registered_ones_with_a_training_section():
    pipelines = register_pipelines()
    trained = {
        name
        for name, pipeline in pipelines.items()
        if name != "__default__" and f"params:{name}.training" in pipeline.inputs()
    }
    assert trained == set(TRAINING_PIPELINES)


@pytest.mark.parametrize("name", TRAINING_PIPELINES)
def test_quick_trains_fewer_epochs_than_base(name):
    base = conf_parameters()[name]["training"]
    quick = conf_parameters("quick")[name]["training"]
    assert quick["epochs"] < base["epochs"]
    assert {key: value for key, value in quick.items() if key != "epochs"} == {
        key: value for key, value in base.items() if key != "epochs"
    }


def test_the_declared_training_package_is_that_of_the_nodes_tagged_training():
    for name, pipeline in register_pipelines().items():
        if name == "__default__":
            continue
        packages = {
            node.func.__module__.removeprefix("convnets.pipelines.").removesuffix(".nodes")
            for node in pipeline.only_nodes_with_tags("training").nodes
        }
        declared = REGISTRY[name].trains
        assert packages == ({declared} if declared else set()), name


def test_the_declared_sections_are_those_the_nodes_parse():
    """``Registered.sections`` (checked before TensorFlow is imported) is what Kedro's
    validation parses: each ``params:`` input of a node typed with a pydantic model."""
    import inspect  # noqa: PLC0415
    import typing  # noqa: PLC0415

    from pydantic import BaseModel  # noqa: PLC0415

    for name, pipeline in register_pipelines().items():
        if name == "__default__":
            continue
        parsed = {}
        for node in pipeline.nodes:
            hints = typing.get_type_hints(node.func)
            arguments = list(inspect.signature(node.func).parameters)
            for argument, dataset in zip(arguments, node.inputs, strict=False):
                model = hints.get(argument)
                if dataset.startswith("params:") and isinstance(model, type):
                    if issubclass(model, BaseModel):
                        parsed[dataset.removeprefix("params:")] = model
        assert parsed == dict(REGISTRY[name].sections), name


def test_naming_the_pipelines_builds_none():
    pipelines = register_pipelines()
    assert set(TRAINING_PIPELINES) < set(pipelines)
    assert all("_build" in vars(pipeline) for pipeline in pipelines.values())


QUICK_EPOCHS = {"image_classifier": 2, "mnist": 1}  # what conf/quick/ gave each before


@pytest.mark.parametrize("name", TRAINING_PIPELINES)
def test_quick_gives_every_training_pipeline_its_packages_epochs(name):
    quick = conf_parameters("quick")[name]["training"]
    assert quick["epochs"] == QUICK_EPOCHS[training_packages()[name]]


NEW_PIPELINE = "catdog_tiny"
# The recipe of docs/design.md ("Adding a training pipeline"), to the letter.
NEW_ENTRY = f'    "{NEW_PIPELINE}": _catdog_entry("{NEW_PIPELINE}"),\n'
BEFORE_ENTRY = '    "predict": Registered(_predict, sections={"predict": Predict}),\n'
# Run with the copy's sources: what the registry, quick, the report and validation make
# of the new pipeline. No TensorFlow: nothing here builds a pipeline.
PICKED_UP = """
import json, sys
import pandas as pd
from kedro.pipeline import Pipeline
from convnets.config.check import TRAINING_PIPELINES, ParameterCheck
from convnets.config.keys import check_parameter_keys, conf_parameters
from convnets.parameters import ParameterError, Report, Training, parse
from convnets.pipelines.report import nodes

name, found = sys.argv[1], {}
found["hooks"] = name in TRAINING_PIPELINES
quick, base = conf_parameters("conf", "quick"), conf_parameters("conf")
found["epochs"] = [base[name]["training"]["epochs"], quick[name]["training"]["epochs"]]
found["parsed"] = parse(Training, f"{name}.training", quick[name]["training"]).epochs
report = parse(Report, "report", quick["report"])
found["report"] = list(report.training_pipelines)
start = pd.Timestamp("2026-12-01", tz="UTC")
runs = pd.DataFrame([{
    "run_id": "r", "status": "FINISHED", "start_time": start,
    "end_time": start + pd.Timedelta(minutes=1), "tags.mlflow.runName": name,
    "metrics.best_checkpoint_test_accuracy": 0.6, "metrics.final_model_test_accuracy": 0.6,
}])
found["compared"] = list(nodes.latest_runs(runs, report)[0].pipeline)
check_parameter_keys("conf", "quick", {name: {"training": {"epochs": 1}}})
try:
    check_parameter_keys("conf", "quick", {name: {"trainig": {"epochs": 1}}})
except ParameterError as error:
    found["typo"] = str(error)
try:
    ParameterCheck().before_pipeline_run({"pipeline_names": [name, "mnist"]}, Pipeline([]), None)
except ParameterError as error:
    found["two_trainings"] = str(error)
found["tensorflow"] = "tensorflow" in sys.modules
print(json.dumps(found))
"""


@pytest.mark.processes
def test_a_training_pipeline_added_in_one_entry_and_one_section_is_picked_up(tmp_path):
    project = make_kedro_project(tmp_path / "project")
    shutil.copytree(
        PROJECT_ROOT / "src" / "convnets",
        project / "src" / "convnets",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    registry = project / "src" / "convnets" / "pipeline_registry.py"
    text = registry.read_text()
    assert text.count(BEFORE_ENTRY) == 1
    registry.write_text(text.replace(BEFORE_ENTRY, NEW_ENTRY + BEFORE_ENTRY))
    section = {NEW_PIPELINE: conf_parameters()["catdog_baseline"]}  # base's full section
    (project / "conf" / "base" / f"parameters_{NEW_PIPELINE}.yml").write_text(
        yaml.safe_dump(section)
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(project / "src"),  # the copy's sources, not the installed ones
        "KEDRO_DISABLE_TELEMETRY": "1",
    }

    def run(*command: str) -> str:
        result = subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    listed = run(str(Path(sys.executable).with_name("kedro")), "registry", "list")
    assert f"- {NEW_PIPELINE}\n" in listed
    found = json.loads(run(sys.executable, "-c", PICKED_UP, NEW_PIPELINE).splitlines()[-1])
    assert found["hooks"]
    assert found["epochs"] == [30, 2] and found["parsed"] == 2  # quick's, untold
    assert found["report"] == [*TRAINING_PIPELINES, NEW_PIPELINE]
    assert found["compared"] == [NEW_PIPELINE]
    assert f"{NEW_PIPELINE}.trainig (--params): no key trainig" in found["typo"]
    assert f"did you mean {NEW_PIPELINE}.training?" in found["typo"]
    assert f"not {NEW_PIPELINE}, mnist" in found["two_trainings"]
    assert not found["tensorflow"]
