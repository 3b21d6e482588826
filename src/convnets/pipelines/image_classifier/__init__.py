"""A cats-vs-dogs model: decode, batch, train and evaluate, reused under one namespace per model."""

from convnets.pipelines.image_classifier.pipeline import create_pipeline

__all__ = ["create_pipeline"]
