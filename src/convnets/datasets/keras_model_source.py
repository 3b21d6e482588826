"""A Keras model from an MLflow model URI, or else the project's latest saved version."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError, Version


class KerasModelSourceDataset(AbstractDataset[None, Any]):
    """Loads ``model_uri`` with ``mlflow.keras`` when given, else the latest version at
    ``filepath`` (a versioned ``TensorFlowModelDataset`` folder).

    The predict pipeline takes its model from either place, chosen at run time
    (``--params=model_uri=models:/<model_id>``); one catalog entry cannot switch
    between two dataset types, hence this class.
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
            import mlflow.keras  # noqa: PLC0415 - only when a URI is given

            try:
                return mlflow.keras.load_model(self._model_uri)
            except Exception as exc:
                raise DatasetError(
                    f"Cannot load the MLflow model {self._model_uri!r}: {exc}. List the logged "
                    "models with mlflow.search_logged_models() (run from the project root)."
                ) from exc
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
