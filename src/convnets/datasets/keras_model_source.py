"""A Keras model from an MLflow model URI, or else the project's latest saved version."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError, Version

from convnets.errors import UserError

logger = logging.getLogger(__name__)


class ModelNotFound(UserError, DatasetError):
    """No model where the user pointed, or no trained model yet."""


def _whole_archive(path: Path) -> bool:
    """True when ``path`` is a readable zip (a ``.keras`` file) whose members check out;
    a whole file that does not load is another problem (a Keras version, a layer)."""
    import zipfile  # noqa: PLC0415

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


class DamagedModel(UserError, DatasetError):
    """The saved model is there but cannot be read."""


class KerasModelSourceDataset(AbstractDataset[None, Any]):
    """Loads the Keras model of ``model_uri`` when given, else the latest version at
    ``filepath`` (a versioned ``TensorFlowModelDataset`` folder).

    ``model_uri`` is any MLflow model URI (``models:/convnets-catdog@champion``,
    ``models:/<model_id>``, ``runs:/…``): a Keras-flavor model, or the servable model
    (``serving.ImageClassifier``), whose Keras model is taken out of its wrapper.
    The predict pipeline takes its model from either place, chosen at run time; one
    catalog entry cannot switch between two dataset types, hence this class.
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
            return _load_mlflow_keras_model(self._model_uri)
        from kedro_datasets.tensorflow import TensorFlowModelDataset  # noqa: PLC0415

        saved = TensorFlowModelDataset(filepath=self._filepath, version=Version(None, None))
        try:
            return saved.load()
        except DatasetError as exc:
            versions = sorted(Path(self._filepath).glob("*/*"))
            if versions and not _whole_archive(versions[-1]):  # damaged, not missing
                raise DamagedModel(
                    f"The trained model {versions[-1]} cannot be loaded ({exc.__cause__ or exc}): "
                    "the file is damaged. Move its version out of the folder (mv "
                    f"{versions[-1].parent} {self._filepath}.damaged-{versions[-1].parent.name}) "
                    "to use the version before it, train again (kedro run --pipelines=catdog"
                    f"{self._env_option}), or pass an MLflow model with "
                    "--params=model_uri=models:/<registered name>@champion."
                ) from exc
            raise ModelNotFound(
                f"No trained model at {self._filepath}: train it first (kedro run "
                f"--pipelines=catdog{self._env_option}, or the pipeline "
                "--params=predict_model=<name> names), or pass an MLflow model with "
                "--params=model_uri=models:/<registered name>@champion."
            ) from exc

    def describe(self) -> dict[str, str]:
        """Where the model comes from and what trained it: source, version, MLflow run,
        epochs, test accuracy, and whether a quick (``--env=quick``) run made it."""
        return describe_model_source(self._filepath, self._model_uri)


class ModelSourceDescriptionDataset(KerasModelSourceDataset):
    """What ``KerasModelSourceDataset.describe`` says of the same model, without loading it."""

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
        # The newest version that holds the model, as Kedro loads it.
        versions = sorted(p.parent.name for p in Path(filepath).glob(f"*/{Path(filepath).name}"))
        facts["model_source"] = filepath
        if not versions:
            return facts
        facts["model_version"] = versions[-1]  # Kedro's version: the session that saved it
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.run_id = '{versions[-1]}'",
            output_format="list",
        )
        run_id = runs[0].info.run_id if runs else None
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


def _load_mlflow_keras_model(model_uri: str) -> Any:
    import mlflow  # noqa: PLC0415 - only when a URI is given

    try:
        flavors = mlflow.models.get_model_info(model_uri).flavors
        if "keras" in flavors:
            return mlflow.keras.load_model(model_uri)
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().keras_model
    except Exception as exc:
        raise ModelNotFound(unknown_model_message("load the MLflow model", model_uri, exc)) from exc
