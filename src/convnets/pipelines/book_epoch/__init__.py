"""The book_epoch pipeline: one epoch of the book's recipe timed, the unit of a training cost."""

from convnets.pipelines.book_epoch.pipeline import create_pipeline

__all__ = ["create_pipeline"]
