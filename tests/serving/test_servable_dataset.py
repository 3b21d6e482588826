"""Registering servable models and the champion rule, on a throw-away MLflow store."""

import keras
import mlflow
import pandas as pd
import pytest

from convnets.serving.model import ServableModel, ServingConfig, ServingSpec
from convnets.serving.servable_dataset import (
    ACCURACY_TAG,
    DECISION_TAG,
    SPLIT_TAG,
    MlflowServableModelDataset,
    champion_decision,
)
from tests.conftest import jpeg_bytes, reset_mlflow

# Given, as the catalog gives them: MLflow's inference of requirements reloads the model in
# a subprocess (about a minute a version on a busy 2-core machine).
REQUIREMENTS = ["mlflow"]
CONFIG = ServingConfig(
    class_names=["cat", "dog"],
    image_size=[16, 16],
    channels=3,
    input_scale=1.0,
    max_pixels=40_000_000,
    decision_threshold=0.5,
)


def _champion(accuracy: str, split: str = "a" * 64) -> dict[str, str]:
    return {ACCURACY_TAG: accuracy, SPLIT_TAG: split}


@pytest.mark.parametrize(
    "accuracy, split, champion, promoted",
    [
        (0.70, "a" * 64, None, True),  # the first version
        (0.81, "a" * 64, _champion("0.800000"), True),
        (0.80, "a" * 64, _champion("0.800000"), False),  # equal is not better
        (0.79, "a" * 64, _champion("0.800000"), False),
        (0.99, "b" * 64, _champion("0.800000"), False),  # another split does not compare
        (0.99, "a" * 64, {}, False),  # a champion set by hand, without scores
    ],
)
def test_champion_moves_only_on_a_strictly_better_score_on_the_same_split(
    accuracy, split, champion, promoted
):
    decision, reason = champion_decision(accuracy, split, champion)
    assert decision is promoted
    assert reason


def _tiny_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("registry-test")
    yield mlflow.MlflowClient()
    reset_mlflow()


def _register(dataset, accuracy: float, split: str = "a" * 64) -> str:
    spec = ServingSpec(CONFIG, jpeg_bytes(1, size=20), test_split_sha256=split)
    with mlflow.start_run() as run:
        dataset.save(ServableModel(_tiny_model(), spec, accuracy))
    return run.info.run_id


def test_each_run_adds_a_version_and_the_alias_follows_the_rule(tracking):
    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-catdog_baseline", pip_requirements=REQUIREMENTS
    )
    assert dataset.registered_model_name == "convnets-catdog-baseline"
    scores = [0.70, 0.65, 0.80]
    runs = [_register(dataset, score) for score in scores]
    runs.append(_register(dataset, 0.95, split="b" * 64))

    versions = tracking.search_model_versions("name='convnets-catdog-baseline'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    champion = tracking.get_model_version_by_alias("convnets-catdog-baseline", "champion")
    assert int(champion.version) == 3 and champion.run_id == runs[2]
    by_version = {str(v.version): v for v in versions}
    assert by_version["2"].tags[DECISION_TAG].endswith("@champion is version 1")
    assert "another test split" in by_version["4"].tags[DECISION_TAG]
    assert by_version["4"].tags[SPLIT_TAG] == "b" * 64
    decision = tracking.get_run(runs[1]).data.tags[DECISION_TAG]
    assert decision.startswith("convnets-catdog-baseline version 2: test accuracy 0.6500 <=")

    served = mlflow.pyfunc.load_model("models:/convnets-catdog-baseline@champion")
    answer = served.predict(pd.DataFrame({"image": [jpeg_bytes(3, size=30)]}))
    assert answer.label[0] in {"cat", "dog"} and answer.error[0] == ""
    assert served.metadata.get_input_schema().input_types()[0].name == "binary"


def test_saving_outside_a_run_fails_clearly(tracking):
    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-x", pip_requirements=REQUIREMENTS
    )
    spec = ServingSpec(CONFIG, jpeg_bytes(1), test_split_sha256="a" * 64)
    with pytest.raises(Exception, match="No active MLflow run"):
        dataset.save(ServableModel(_tiny_model(), spec, 0.5))


KILLED_AFTER_REGISTRATION = """
import os, signal, sys
import mlflow
from convnets.serving.servable_dataset import MlflowServableModelDataset
from convnets.serving.model import ServableModel, ServingSpec
from tests.conftest import jpeg_bytes
from tests.serving.test_servable_dataset import CONFIG, REQUIREMENTS, _tiny_model

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("registry-test")
# SIGKILL at the first step after the version is registered.
MlflowServableModelDataset._decide = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
spec = ServingSpec(CONFIG, jpeg_bytes(1, size=20), test_split_sha256="a" * 64)
with mlflow.start_run():
    MlflowServableModelDataset("convnets-x", pip_requirements=REQUIREMENTS).save(
        ServableModel(_tiny_model(), spec, 0.9)
    )
"""


@pytest.mark.processes
def test_a_version_registered_by_a_killed_run_is_decided_on_by_the_next(tracking, tmp_path):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from tests.conftest import PROJECT_ROOT  # noqa: PLC0415

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_REGISTRATION, mlflow.get_tracking_uri()],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    (orphan,) = tracking.search_model_versions("name='convnets-x'")
    assert DECISION_TAG not in orphan.tags and orphan.tags[ACCURACY_TAG] == "0.900000"
    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-x", pip_requirements=REQUIREMENTS
    )
    # While its run is RUNNING, it may be deciding yet (another machine): left alone.
    dataset._finish_orphans(tracking)  # noqa: SLF001
    assert DECISION_TAG not in tracking.get_model_version("convnets-x", "1").tags
    # The next kedro run marks the killed run KILLED at its start (hooks.close_orphan_runs).
    tracking.set_terminated(orphan.run_id, status="KILLED")

    _register(dataset, 0.80)  # worse than the orphan: the orphan becomes champion
    versions = {str(v.version): v for v in tracking.search_model_versions("name='convnets-x'")}
    assert "deciding now" not in versions["1"].tags[DECISION_TAG]
    assert versions["1"].tags[DECISION_TAG].endswith("@champion is version 1")
    assert versions["2"].tags[DECISION_TAG].endswith("@champion is version 1")
    assert str(tracking.get_model_version_by_alias("convnets-x", "champion").version) == "1"


def test_a_run_that_read_the_champion_before_a_better_rival_wrote_hands_the_alias_on(
    tracking, monkeypatch
):
    """Two runs deciding at once: the worse one read "no champion" before the better one
    set the alias, and writes last; the alias must still end on the better version."""
    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-race", pip_requirements=REQUIREMENTS
    )
    undecided = pytest.MonkeyPatch()
    undecided.setattr(MlflowServableModelDataset, "_decide", lambda *args, **kwargs: None)
    _register(dataset, 0.90)  # version 1, about to decide
    _register(dataset, 0.80)  # version 2, about to decide
    undecided.undo()
    tracking.set_registered_model_alias("convnets-race", "champion", "1")  # 1 decided first
    reads = iter([None])  # version 2's stale read, taken before version 1 wrote
    real_champion = MlflowServableModelDataset._champion  # noqa: SLF001
    monkeypatch.setattr(
        MlflowServableModelDataset,
        "_champion",
        lambda self, client: next(reads, None) or real_champion(self, client),
    )
    dataset._decide(tracking, "2", 0.80, "a" * 64, this_run=False)  # noqa: SLF001
    champion = tracking.get_model_version_by_alias("convnets-race", "champion")
    assert str(champion.version) == "1"
    decision = tracking.get_model_version("convnets-race", "2").tags[DECISION_TAG]
    assert decision.endswith("@champion is version 1")


def test_a_run_whose_alias_write_collides_with_a_rivals_reads_again_and_decides_again(
    tracking, monkeypatch
):
    """The server's alias insert raced another run's (a unique-key error): the run reads
    the new champion and decides against it instead of failing."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-collide", pip_requirements=REQUIREMENTS
    )
    undecided = pytest.MonkeyPatch()
    undecided.setattr(MlflowServableModelDataset, "_decide", lambda *args, **kwargs: None)
    _register(dataset, 0.90)  # version 1
    _register(dataset, 0.80)  # version 2
    undecided.undo()
    real_set = mlflow.MlflowClient.set_registered_model_alias
    collisions = []

    def rival_wins_the_insert(client, name, alias, version):
        if not collisions:  # version 1's run inserts the alias first
            collisions.append(version)
            real_set(client, name, alias, "1")
            raise MlflowException("duplicate key value violates unique constraint")
        real_set(client, name, alias, version)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", rival_wins_the_insert)
    dataset._decide(tracking, "2", 0.80, "a" * 64, this_run=False)  # noqa: SLF001
    assert collisions == ["2"]
    assert str(tracking.get_model_version_by_alias("convnets-collide", "champion").version) == "1"
    decision = tracking.get_model_version("convnets-collide", "2").tags[DECISION_TAG]
    assert "<= champion's 0.9000" in decision and decision.endswith("@champion is version 1")


def test_an_alias_a_person_moved_back_is_not_handed_to_the_version_they_demoted(tracking):
    dataset = MlflowServableModelDataset(
        registered_model_name="convnets-demoted", pip_requirements=REQUIREMENTS
    )
    _register(dataset, 0.70)  # version 1: champion
    _register(dataset, 0.90)  # version 2: champion
    tracking.set_registered_model_alias("convnets-demoted", "champion", "1")  # a person's call
    _register(dataset, 0.80)  # version 3 beats version 1, the champion it compares against
    champion = tracking.get_model_version_by_alias("convnets-demoted", "champion")
    assert str(champion.version) == "3"  # not version 2, which the person demoted
