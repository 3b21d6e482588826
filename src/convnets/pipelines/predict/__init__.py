"""Classify a folder of pictures with a trained cats-vs-dogs model."""

from convnets.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
