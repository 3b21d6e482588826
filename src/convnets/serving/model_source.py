"""The servable model predict uses: an MLflow model URI, or the latest run of a pipeline."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kedro.io import AbstractDataset, DatasetError

from convnets.errors import UserError

logger = logging.getLogger(__name__)

SERVABLE_MODEL_NAME = "best_checkpoint"  # MlflowServableModelDataset's logged model name
TRAIN_ADVICE = (
    "train again (kedro run --pipelines=catdog{env_option}), or pass a servable model "
    "with --params=model_uri=models:/<registered name>@champion"
)


class ModelNotFound(UserError, DatasetError):
    """No model where the user pointed, or no trained model yet."""


class DamagedModel(UserError, DatasetError):
    """The model is there but cannot be read."""


def _whole_archive(path: Path) -> bool:
    """True when ``path`` is a readable zip (a ``.keras`` file) whose members check out."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


class ServableModelSourceDataset(AbstractDataset[None, Any]):
    """Loads the servable model (``serving.ImageClassifier``: picture bytes in, label out)
    with ``mlflow.pyfunc.load_model``, so its configuration comes with it.

    From ``model_uri`` when given (``models:/convnets-catdog@champion``,
    ``models:/<model_id>``, ``runs:/<run_id>/best_checkpoint``); else from the MLflow
    run that saved the latest version at ``filepath`` (a versioned
    ``TensorFlowModelDataset`` folder, whose version is the run's ``run_id`` tag).
    Loading goes through kedro-mlflow's ``MlflowModelTrackingDataset`` (any model
    URI); its ``MlflowModelRegistryDataset`` takes registered names only, and one
    catalog entry cannot switch between dataset types at run time, hence this class.
    """

    def __init__(
        self,
        filepath: str,
        model_uri: str | None = None,
        env_option: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath
        self._model_uri = model_uri
        self._env_option = env_option  # " --env=quick": in the command the error suggests
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "model_uri": self._model_uri}

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def load(self) -> Any:
        if self._model_uri:
            return load_servable_model(self._model_uri, TRAIN_ADVICE.format(env_option=""))
        latest = _latest_version(self._filepath)
        if latest is None:
            raise ModelNotFound(
                f"No trained model at {self._filepath}: train it first (kedro run "
                f"--pipelines=catdog{self._env_option}, or the pipeline "
                "--params=predict_model=<name> names), or pass an MLflow model with "
                "--params=model_uri=models:/<registered name>@champion."
            )
        fallback = (
            f"Move its version out of the folder (mv {latest.parent} "
            f"{self._filepath}.damaged-{latest.parent.name}) to use the version before it, "
            + TRAIN_ADVICE.format(env_option=self._env_option)
        )
        return load_servable_model(_run_model_uri(latest, fallback), fallback)

    def describe(self) -> dict[str, str]:
        """Where the model comes from and what trained it: source, version, MLflow run,
        epochs, test accuracy, and whether a quick (``--env=quick``) run made it."""
        return describe_model_source(self._filepath, self._model_uri)


def _latest_version(filepath: str) -> Path | None:
    """The newest saved version's file, as Kedro's versioned datasets order them."""
    versions = sorted(Path(filepath).glob(f"*/{Path(filepath).name}"))
    return versions[-1] if versions else None


def _run_of_version(version: str) -> str | None:
    """The id of the MLflow run whose session saved Kedro version ``version`` (its
    ``run_id`` tag), or None."""
    import mlflow  # noqa: PLC0415

    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.run_id = '{version}'",
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def _run_model_uri(saved: Path, advice: str) -> str:
    """``runs:/…`` of the servable model the run that saved ``saved`` logged."""
    import mlflow  # noqa: PLC0415

    version = saved.parent.name  # Kedro's version: the session that saved it
    run_id = _run_of_version(version)
    if run_id is None:
        raise ModelNotFound(
            f"The trained model {saved} has no servable model: no MLflow run of tracking URI "
            f"{mlflow.get_tracking_uri()} saved version {version} (deleted, or tracked "
            f"elsewhere). {advice}."
        )
    return f"runs:/{run_id}/{SERVABLE_MODEL_NAME}"


def load_servable_model(model_uri: str, advice: str, action: str = "load the MLflow model") -> Any:
    """The ``mlflow.pyfunc`` servable model of ``model_uri``; a clear error when it is
    unknown (``action``: what was tried, for the message), not a servable model (bytes
    in), or damaged (``advice`` says what to do)."""
    import mlflow  # noqa: PLC0415
    from kedro_mlflow.io.models import MlflowModelTrackingDataset  # noqa: PLC0415

    try:
        info = mlflow.models.get_model_info(model_uri)
    except Exception as exc:
        raise ModelNotFound(unknown_model_message(action, model_uri, exc)) from exc
    inputs = info.signature.inputs.input_names() if info.signature else []
    if inputs != ["image"]:
        raise ModelNotFound(
            f"{model_uri} is not a servable model (its inputs are {inputs or 'unknown'}, not "
            f"one 'image' column of bytes): pass the {SERVABLE_MODEL_NAME!r} model a training "
            "run logs and registers, such as models:/<registered name>@champion."
        )
    source = MlflowModelTrackingDataset(
        flavor="mlflow.pyfunc", pyfunc_workflow="python_model", load_args={"model_uri": model_uri}
    )
    try:
        return source.load()
    except Exception as exc:
        cause = exc.__cause__ or exc  # Kedro wraps a loader's error in a DatasetError
        damaged = _damaged_keras_files(info.model_id)
        raise DamagedModel(
            f"The MLflow model {model_uri} (run {info.run_id}) cannot be loaded "
            f"({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
            + (f": the file {', '.join(map(str, damaged))} is damaged" if damaged else "")
            + f". {advice}."
        ) from exc


def previous_version_advice(model_uri: str) -> str:
    """What to serve when ``model_uri`` cannot be loaded: the registered version before
    it, else a model trained again."""
    import mlflow  # noqa: PLC0415

    retrain = "train again (kedro run --pipelines=<pipeline>) and serve its champion"
    registered = _registered_version(mlflow.MlflowClient(), model_uri)
    if registered and int(registered[1]) > 1:
        name, version = registered
        earlier = f"models:/{name}/{int(version) - 1}"
        return f"Serve the version before it (python -m convnets.serve {earlier}), or {retrain}"
    return retrain.capitalize()


def _damaged_keras_files(model_id: str | None) -> list[Path]:
    """The logged model's ``.keras`` files that are not whole zips, when it is on this disk."""
    import mlflow  # noqa: PLC0415

    try:
        location = urlparse(mlflow.get_logged_model(model_id).artifact_location)
    except Exception:  # noqa: BLE001 - not a logged model (an MLflow 2 run's): no file named
        return []
    folder = Path(location.path)
    if location.scheme not in ("", "file") or not folder.is_dir():
        return []
    return [path for path in sorted(folder.rglob("*.keras")) if not _whole_archive(path)]


class ModelSourceDescriptionDataset(ServableModelSourceDataset):
    """What ``ServableModelSourceDataset.describe`` says of the same model, without loading it."""

    def load(self) -> dict[str, str]:
        return self.describe()


def describe_model_source(filepath: str, model_uri: str | None) -> dict[str, str]:
    """The facts ``predict`` reports (and tags its run with) about the model it uses."""
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient()
    facts: dict[str, str] = {}
    run_id = None
    if model_uri:
        facts["model_source"] = model_uri
        try:
            run_id = mlflow.models.get_model_info(model_uri).run_id
        except Exception:  # noqa: BLE001 - load() reports an unknown model with the names
            return facts
        registered = _registered_version(client, model_uri)
        if registered:
            facts["model_registered_name"], facts["model_version"] = registered
    else:
        # The newest version that holds the model, as load() takes it.
        latest = _latest_version(filepath)
        facts["model_source"] = filepath
        if latest is None:
            return facts
        facts["model_version"] = latest.parent.name  # Kedro's: the session that saved it
        run_id = _run_of_version(latest.parent.name)
    if not run_id:
        return facts
    facts["model_run_id"] = run_id
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - a run deleted since: the source still says enough
        return facts
    epochs = len(client.get_metric_history(run_id, "loss"))
    if epochs:
        facts["model_epochs"] = str(epochs)
    metrics = run.data.metrics
    accuracy = metrics.get(
        "best_checkpoint_test_accuracy", metrics.get("final_model_test_accuracy")
    )
    if accuracy is not None:
        facts["model_test_accuracy"] = f"{accuracy:.4f}"
    experiment = client.get_experiment(run.info.experiment_id).name
    facts["model_experiment"] = experiment
    quick = "quick" in experiment or "quick" in facts.get("model_registered_name", "")
    facts["model_is_quick"] = str(quick).lower()
    return facts


def _registered_version(client: Any, model_uri: str) -> tuple[str, str] | None:
    """``(name, version)`` of a ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
    if not model_uri.startswith("models:/"):
        return None
    reference = model_uri.removeprefix("models:/")
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return name, str(client.get_model_version_by_alias(name, alias).version)
        name, _, version = reference.partition("/")
        if version.isdigit():
            return name, version
    except Exception:  # noqa: BLE001
        return None
    return None


def registered_model_names() -> list[str]:
    """The names in the model registry of the current tracking URI."""
    import mlflow  # noqa: PLC0415

    try:
        return sorted(m.name for m in mlflow.MlflowClient().search_registered_models())
    except Exception:  # noqa: BLE001
        return []


def unknown_model_message(action: str, model_uri: str, error: Exception) -> str:
    """One line for a model URI MLflow cannot resolve: why, and the registered names."""
    import mlflow  # noqa: PLC0415

    names = registered_model_names()
    return (
        f"Cannot {action} {model_uri!r} (tracking URI {mlflow.get_tracking_uri()}): "
        f"{str(error).splitlines()[0]}. Registered models: "
        + (", ".join(names) if names else "none yet")
        + ". Quick runs register convnets-quick-<pipeline>; full runs convnets-<pipeline>."
    )
