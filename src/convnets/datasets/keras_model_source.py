"""A Keras model from an MLflow model URI, or else the project's latest saved version."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError, Version


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
        self, filepath: str, model_uri: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = filepath
        self._model_uri = model_uri
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
            raise DatasetError(
                f"No trained model at {self._filepath}: train it first (kedro run "
                "--pipelines=catdog, or the pipeline --params=predict_model=<name> names), "
                "or pass an MLflow model with --params=model_uri=models:/<model_id>."
            ) from exc


def _load_mlflow_keras_model(model_uri: str) -> Any:
    import mlflow  # noqa: PLC0415 - only when a URI is given

    try:
        flavors = mlflow.models.get_model_info(model_uri).flavors
        if "keras" in flavors:
            return mlflow.keras.load_model(model_uri)
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().keras_model
    except Exception as exc:
        raise DatasetError(
            f"Cannot load the MLflow model {model_uri!r} (tracking URI "
            f"{mlflow.get_tracking_uri()}): {exc}. Registered models: `mlflow models` in the "
            "UI's Models tab, or MlflowClient().search_registered_models(); logged models: "
            "mlflow.search_logged_models() (run from the project root)."
        ) from exc
