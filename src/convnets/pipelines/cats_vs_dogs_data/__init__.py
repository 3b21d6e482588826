"""Cats vs dogs ingestion: the book's split of the archive, shared by every model."""

from convnets.pipelines.cats_vs_dogs_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
