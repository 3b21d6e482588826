"""The report pipeline: the latest runs of every training pipeline, compared."""

from convnets.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
