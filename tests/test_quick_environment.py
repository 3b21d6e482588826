"""--env=quick shortens every training pipeline, not only the one its author tried."""

import pytest

from convnets.pipeline_registry import TRAINING_PIPELINES, register_pipelines
from tests.conftest import conf_parameters


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
