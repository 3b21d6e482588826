"""What every model pipeline ends with: metric histories, curves, MLflow models."""

from convnets.pipelines.training_report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
