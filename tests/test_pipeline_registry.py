"""The registry: one pipeline per package, node functions only in pipelines/, and
--env=quick shortening every training pipeline, not only the one its author tried."""

import importlib
import pkgutil

import pytest

import convnets
import convnets.pipelines
from convnets.pipeline_registry import TRAINING_PIPELINES, register_pipelines
from tests.conftest import conf_parameters

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
