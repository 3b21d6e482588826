"""A servable model logged to the active MLflow run, registered, and promoted by its score."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException

import convnets
from convnets import stopping
from convnets.durability.scratch import ScratchDirectory
from convnets.serving.model import IMAGE_COLUMN, KERAS_ARTIFACT, ServableModel

logger = logging.getLogger(__name__)

SPLIT_TAG = "test_split_sha256"
ACCURACY_TAG = "best_checkpoint_test_accuracy"
DECISION_TAG = "champion_decision"
ALIAS_ATTEMPTS = 5  # reads and writes of the alias when other runs move it meanwhile


def _is_number(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def champion_decision(
    accuracy: float, split: str, champion: dict[str, str] | None
) -> tuple[bool, str]:
    """Whether a new version takes the alias from ``champion`` (its version's tags), and why.

    It does only when its test accuracy is strictly greater on the same test split;
    a first version always does. A champion scored on another split is kept: the two
    scores do not compare, and moving the alias is then a person's decision.
    """
    if champion is None:
        return True, f"first version scored: test accuracy {accuracy:.4f}"
    try:
        champion_accuracy = float(champion[ACCURACY_TAG])
        champion_split = champion[SPLIT_TAG]
    except (KeyError, ValueError):
        return False, "the champion has no score tags: kept, set the alias by hand"
    if champion_split != split:
        return False, (
            f"the champion was scored on another test split ({champion_split[:12]}…, "
            f"this one {split[:12]}…): kept, scores do not compare"
        )
    if accuracy > champion_accuracy:
        return True, f"test accuracy {accuracy:.4f} > champion's {champion_accuracy:.4f}"
    return False, f"test accuracy {accuracy:.4f} <= champion's {champion_accuracy:.4f}: kept"


def pyfunc_arguments(
    data: ServableModel, scratch: Path, pip_requirements: list[str] | None
) -> dict[str, Any]:
    """What ``mlflow.pyfunc.log_model`` / ``save_model`` take to write ``data`` as the
    servable model; its Keras file is written in ``scratch``, which must outlive the call."""
    keras_file = scratch / "model.keras"
    data.keras_model.save(keras_file)
    return {
        # A model from code (serving_model.py), not a pickled object.
        "python_model": str(Path(convnets.__file__).parent / "serving" / "model_code.py"),
        "artifacts": {KERAS_ARTIFACT: str(keras_file)},
        # The package travels with the model: it loads where convnets is not installed.
        "code_paths": [str(Path(convnets.__file__).parent)],
        "model_config": data.spec.config.as_model_config(),
        "signature": data.spec.config.signature(),
        "input_example": pd.DataFrame({IMAGE_COLUMN: [data.spec.input_example]}),
        "pip_requirements": pip_requirements,
    }


def save_servable_model(
    data: ServableModel, path: Path, pip_requirements: list[str] | None = None
) -> None:
    """Write ``data`` as the servable MLflow model folder ``path``, as a run logs it."""
    with ScratchDirectory(prefix="convnets-servable-") as tmp:
        mlflow.pyfunc.save_model(str(path), **pyfunc_arguments(data, Path(tmp), pip_requirements))


def _run_is_live(client: mlflow.MlflowClient, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        return client.get_run(run_id).info.status == "RUNNING"
    except MlflowException:  # the run was deleted: nobody will decide for it
        return False


class MlflowServableModelDataset(AbstractDataset[ServableModel, None]):
    """Logs a ``ServableModel`` as an MLflow pyfunc model, registers a new version, and
    moves ``alias`` to it when ``champion_decision`` says so.

    kedro-mlflow's ``MlflowModelTrackingDataset`` takes its signature, input example
    and registered name from YAML only, and sets no version tags or aliases: hence
    this class. Underscores in ``registered_model_name`` become hyphens
    (``convnets-catdog_baseline`` is registered as ``convnets-catdog-baseline``).
    """

    def __init__(
        self,
        registered_model_name: str,
        name: str = "best_checkpoint",
        alias: str = "champion",
        pip_requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.registered_model_name = registered_model_name.replace("_", "-")
        self._name = name
        self._alias = alias
        self._pip_requirements = pip_requirements
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self.registered_model_name, "alias": self._alias}

    def load(self) -> None:
        raise DatasetError(
            f"{type(self).__name__} is write-only: load models:/"
            f"{self.registered_model_name}@{self._alias} with mlflow.pyfunc.load_model"
        )

    def save(self, data: ServableModel) -> None:
        if mlflow.active_run() is None:
            raise DatasetError("No active MLflow run to log the servable model to")
        stopping.check()  # each step below is whole: the next run redoes or decides the rest
        with ScratchDirectory(prefix="convnets-servable-") as tmp:
            info = mlflow.pyfunc.log_model(
                name=self._name, **pyfunc_arguments(data, Path(tmp), self._pip_requirements)
            )
        stopping.check()
        client = mlflow.MlflowClient()
        name = self.registered_model_name
        self._finish_orphans(client)
        # Registered with its score tags in one call: a run killed right after it leaves
        # a version the next run can still decide on (_finish_orphans).
        version = mlflow.register_model(
            info.model_uri,
            name,
            tags={
                SPLIT_TAG: data.spec.test_split_sha256,
                ACCURACY_TAG: f"{data.test_accuracy:.6f}",
            },
        ).version
        self._decide(client, version, data.test_accuracy, data.spec.test_split_sha256)

    def _decide(
        self,
        client: mlflow.MlflowClient,
        version: str,
        accuracy: float,
        split: str,
        *,
        this_run: bool = True,
    ) -> None:
        """Move the alias to ``version`` when its score beats the champion's; tag why."""
        name = self.registered_model_name
        for attempt in range(1, ALIAS_ATTEMPTS + 1):
            decided = self._decided_versions(client)
            current = self._champion(client)
            promote, reason = champion_decision(
                accuracy, split, None if current is None else dict(current.tags)
            )
            if not promote:
                break
            try:
                client.set_registered_model_alias(name, self._alias, version)
            except MlflowException as error:
                # Another run set the alias between this one's read and write (the
                # server's insert raced): read the new champion and decide again.
                if attempt == ALIAS_ATTEMPTS:
                    raise
                logger.info("Model registry: the alias moved meanwhile (%s); deciding again", error)
                time.sleep(random.uniform(0.2, 1.0))
                continue
            self._settle(client, version, accuracy, split, since=current, decided=decided)
            break
        champion = self._champion(client)
        held_by = "none" if champion is None else champion.version
        message = f"{name} version {version}: {reason}; @{self._alias} is version {held_by}"
        client.set_model_version_tag(name, version, DECISION_TAG, message)
        if this_run:
            mlflow.set_tag(DECISION_TAG, message)
        logger.info("Model registry: %s", message)

    def _champion(self, client: mlflow.MlflowClient) -> Any:
        try:
            return client.get_model_version_by_alias(self.registered_model_name, self._alias)
        except MlflowException:  # no version holds the alias yet
            return None

    def _decided_versions(self, client: mlflow.MlflowClient) -> set[str]:
        versions = client.search_model_versions(f"name = '{self.registered_model_name}'")
        return {str(other.version) for other in versions if DECISION_TAG in other.tags}

    def _settle(
        self,
        client: mlflow.MlflowClient,
        version: str,
        accuracy: float,
        split: str,
        *,
        since: Any,
        decided: set[str],
    ) -> None:
        """Hand the alias on to a better version registered since the champion compared.

        Two runs deciding at once both read the old champion; the one that writes last
        would keep the alias although the other scored higher. Only versions newer than
        the champion this run compared against, and still undecided when it read it,
        count: an alias a person moved back to an older version stays where they put it.
        """
        name = self.registered_model_name
        newer_than = -1 if since is None else int(since.version)
        rivals = [
            (float(other.tags[ACCURACY_TAG]), -int(other.version), other.version)
            for other in client.search_model_versions(f"name = '{name}'")
            if int(other.version) > newer_than
            and str(other.version) not in decided
            and other.tags.get(SPLIT_TAG) == split
            and _is_number(other.tags.get(ACCURACY_TAG))
        ]
        best = max(rivals, default=(accuracy, -int(version), version))
        if best[2] != version and best[0] > accuracy:
            logger.info(
                "Model registry: %s version %s, registered meanwhile, scores higher: "
                "@%s is version %s",
                name,
                best[2],
                self._alias,
                best[2],
            )
            client.set_registered_model_alias(name, self._alias, best[2])

    def _finish_orphans(self, client: mlflow.MlflowClient) -> None:
        """Decide on the versions that a killed run registered but never decided on."""
        name = self.registered_model_name
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:  # not registered yet
            return
        for orphan in sorted(versions, key=lambda version: int(version.version)):
            # Only the project's (score tags or none), and only those whose run ended: a
            # run on another machine may be about to decide on its own version.
            if DECISION_TAG in orphan.tags or _run_is_live(client, orphan.run_id):
                continue
            tags = orphan.tags
            if ACCURACY_TAG in tags and SPLIT_TAG in tags:
                logger.warning(
                    "Model registry: %s version %s was registered by a run that stopped "
                    "before deciding on the alias (run %s): deciding now",
                    name,
                    orphan.version,
                    orphan.run_id,
                )
                accuracy, split = float(tags[ACCURACY_TAG]), tags[SPLIT_TAG]
                self._decide(client, orphan.version, accuracy, split, this_run=False)
            else:
                message = (
                    f"{name} version {orphan.version}: registered by a run that stopped before "
                    f"its score was tagged (run {orphan.run_id}): never made champion"
                )
                client.set_model_version_tag(name, orphan.version, DECISION_TAG, message)
                logger.warning("Model registry: %s", message)
