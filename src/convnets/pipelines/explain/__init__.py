"""What a trained cats-vs-dogs model learned, where it looks, and how far to trust it."""

from convnets.pipelines.explain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
