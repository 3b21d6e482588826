"""Resume states are released on a node tag the pipeline declares, not on a node name."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.hooks.training_state import TrainingStateHook
from convnets.pipeline_registry import register_pipelines
from convnets.pipelines import RELEASES_TRAINING_STATE


def _identity(value):
    return value


class _Catalog:
    def __init__(self, names):
        self.released, self._names = [], set(names)

    def exists(self, name):
        return name in self._names

    def load(self, name):
        catalog = self

        class _State:
            def release(self):
                catalog.released.append(name)

        return _State()


def _model_pipeline(namespace: str, last_node: str, tagged: bool) -> Pipeline:
    tags = [RELEASES_TRAINING_STATE] if tagged else []
    return pipeline(
        [
            node(_identity, "training_state", "model", name="train"),
            node(_identity, "model", "servable", name=last_node, tags=tags),
        ],
        namespace=namespace,
    )


def test_the_state_of_a_tagged_nodes_namespace_is_released_whatever_the_nodes_name():
    run = _model_pipeline("toy", "any_name_at_all", tagged=True) + _model_pipeline(
        "other", "register_servable_model", tagged=False
    )
    catalog = _Catalog(["toy.training_state", "other.training_state"])
    TrainingStateHook().after_pipeline_run(run_params={}, pipeline=run, catalog=catalog)
    assert catalog.released == ["toy.training_state"]


def test_a_run_without_the_tagged_node_keeps_the_state():
    run = _model_pipeline("toy", "package", tagged=True).only_nodes("toy.train")
    catalog = _Catalog(["toy.training_state"])
    TrainingStateHook().after_pipeline_run(run_params={}, pipeline=run, catalog=catalog)
    assert catalog.released == []


def test_every_registered_pipeline_with_a_resume_state_declares_when_it_is_released():
    for name, registered in register_pipelines().items():
        states = sorted(
            dataset for dataset in registered.datasets() if dataset.endswith(".training_state")
        )
        assert TrainingStateHook.released_states(registered) == states, name
