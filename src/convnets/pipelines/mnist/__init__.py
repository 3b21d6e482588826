"""MNIST digits with the convnet of listing 8.1."""

from convnets.pipelines.mnist.pipeline import create_pipeline

__all__ = ["create_pipeline"]
