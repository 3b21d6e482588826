"""Cats vs dogs, small dataset: listings 8.6 to 8.18 of the book."""

from convnets.pipelines.catdog.pipeline import create_data_pipeline, create_model_pipeline

__all__ = ["create_data_pipeline", "create_model_pipeline"]
