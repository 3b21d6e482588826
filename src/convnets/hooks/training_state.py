"""Resume states deleted once a run has persisted everything made from them."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from convnets.pipelines import RELEASES_TRAINING_STATE

logger = logging.getLogger(__name__)


class TrainingStateHook:
    """Deletes a model's resume state once the run has persisted everything made from it.

    A namespace's state is released after a successful run that included the node its
    pipeline tags ``RELEASES_TRAINING_STATE`` (the last write made from the training:
    the catalog's model files, metric histories, MLflow models and the registry are
    then written). Until then a re-run after a crash reuses the finished training
    instead of training again.

    ``tryfirst``: the states go before kedro-mlflow ends the run (every write made from
    them has succeeded by then), and ``GuardHook`` releases the project lock after this.
    """

    STATE = "training_state"

    @hook_impl(tryfirst=True)
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        for state in self.released_states(pipeline):
            if catalog.exists(state):
                catalog.load(state).release()
                logger.info("Released the resume state of %s: the run is complete", state)

    @classmethod
    def released_states(cls, pipeline: Pipeline) -> list[str]:
        """The ``<namespace>.training_state`` datasets a successful run of ``pipeline`` frees."""
        return sorted(
            {
                f"{node.namespace}.{cls.STATE}"
                for node in pipeline.nodes
                if node.namespace and RELEASES_TRAINING_STATE in node.tags
            }
        )
