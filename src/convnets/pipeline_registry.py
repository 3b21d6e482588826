"""Project pipelines: the names users pass to ``kedro run --pipelines``.

Written out rather than found by ``find_pipelines()``, which cannot build the same
package under several namespaces. Each pipeline is built when it is first used, so
``kedro registry list`` names them without importing TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from kedro.pipeline import Pipeline

from convnets.hooks import TRAINING_PIPELINES  # one MLflow run each: the hook checks it

__all__ = ["TRAINING_PIPELINES", "register_pipelines"]


class BuiltOnFirstUse(Pipeline):
    """A ``Pipeline`` whose nodes are made by ``build`` when any of its attributes is
    first read; until then it holds only ``build``. Kedro's registry is a dict of
    pipelines read whole even to list their names, and building them imports the node
    modules, TensorFlow among them (several seconds)."""

    def __init__(self, build: Callable[[], Pipeline]) -> None:  # no super(): built later
        self.__dict__["_build"] = build

    def __getattr__(self, name: str) -> Any:
        build = self.__dict__.pop("_build", None)
        if build is None:  # built: a missing attribute is missing
            raise AttributeError(name)
        self.__dict__.update(build().__dict__)
        return getattr(self, name)


def _catdog(namespace: str, **options: bool) -> Pipeline:
    from convnets.pipelines import cats_vs_dogs_data, image_classifier  # noqa: PLC0415

    return cats_vs_dogs_data.create_pipeline() + image_classifier.create_pipeline(
        namespace, **options
    )


def _mnist(**options: str) -> Pipeline:
    from convnets.pipelines import mnist  # noqa: PLC0415

    return mnist.create_pipeline(**options)


def _predict() -> Pipeline:
    from convnets.pipelines import predict  # noqa: PLC0415

    return predict.create_pipeline()


def _book_epoch() -> Pipeline:
    from convnets.pipelines import book_epoch  # noqa: PLC0415

    return book_epoch.create_pipeline()


def _report() -> Pipeline:
    from convnets.pipelines import report  # noqa: PLC0415

    return report.create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """``mnist``, ``fashion_mnist``, ``catdog`` (8.16, the default), ``catdog_baseline`` (8.10),
    ``catdog_xception`` (section 9.3.5's mini Xception),
    ``catdog_fast`` (chapter 9's patterns, chosen by measurement), ``predict``, ``report``,
    ``book_epoch`` (the book's epoch timed: the unit of a training cost)."""
    builders: dict[str, Callable[[], Pipeline]] = {
        "mnist": _mnist,
        "fashion_mnist": partial(
            _mnist, namespace="fashion_mnist", raw_dataset="fashion_mnist_raw"
        ),
        "catdog": partial(_catdog, "catdog", augmentation_figure=True),
        "catdog_baseline": partial(_catdog, "catdog_baseline"),
        "catdog_xception": partial(_catdog, "catdog_xception", augmentation_figure=True),
        "catdog_fast": partial(_catdog, "catdog_fast", augmentation_figure=True),
        "predict": _predict,
        "report": _report,
        "book_epoch": _book_epoch,
    }
    pipelines: dict[str, Pipeline] = {
        name: BuiltOnFirstUse(build) for name, build in builders.items()
    }
    pipelines["__default__"] = pipelines["catdog"]
    return pipelines
