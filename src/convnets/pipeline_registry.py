"""Project pipelines: the names users pass to ``kedro run --pipelines``.

The one place a pipeline is named. Each entry says whether, and with which package, it
trains a model: the hooks (one training pipeline per run), the report (which runs to
compare) and the environments' training overrides (``conf/quick/training_overrides.yml``)
read that here, so adding a training pipeline is one entry below plus its parameter
section (docs/design.md, "Adding a training pipeline").

Written out rather than found by ``find_pipelines()``, which cannot build the same
package under several namespaces. Each pipeline is built when it is first used, so
``kedro registry list`` names them without importing TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kedro.pipeline import Pipeline

from convnets.parameters import (
    Architecture,
    BookEpoch,
    CatsVsDogsData,
    Explain,
    ImageInput,
    MnistTraining,
    Predict,
    Report,
    Serving,
    Training,
)

__all__ = [
    "REGISTRY",
    "TRAINING_PIPELINES",
    "Registered",
    "register_pipelines",
    "sections_of",
    "training_packages",
    "training_pipelines",
]


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


@dataclass(frozen=True)
class Registered:
    """One pipeline of the registry: how it is built, what it trains, what it reads.

    ``trains`` names the pipeline package whose training node (tag ``training``) it runs
    (``None``: it trains no model). ``sections`` are the parameter sections its nodes
    parse, with their models, so that ``config.check`` can check a run's values before
    any pipeline (and TensorFlow) is imported. Both are declared, not read from the
    nodes, so that naming them builds nothing; tests check them against the nodes.
    """

    build: Callable[[], Pipeline]
    trains: str | None = None
    sections: Mapping[str, type] = field(default_factory=dict)


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


def _explain() -> Pipeline:
    from convnets.pipelines import explain  # noqa: PLC0415

    return explain.create_pipeline()


def _book_epoch() -> Pipeline:
    from convnets.pipelines import book_epoch  # noqa: PLC0415

    return book_epoch.create_pipeline()


def _report() -> Pipeline:
    from convnets.pipelines import report  # noqa: PLC0415

    return report.create_pipeline()


IMAGE_CLASSIFIER, MNIST = "image_classifier", "mnist"  # the packages that train


def _image_classifier_sections(namespace: str) -> dict[str, type]:
    return {
        "cats_vs_dogs": CatsVsDogsData,
        "serving": Serving,
        f"{namespace}.input": ImageInput,
        f"{namespace}.architecture": Architecture,
        f"{namespace}.training": Training,
    }


def _catdog_entry(namespace: str, **options: bool) -> Registered:
    return Registered(
        partial(_catdog, namespace, **options),
        trains=IMAGE_CLASSIFIER,
        sections=_image_classifier_sections(namespace),
    )


def _mnist_entry(namespace: str = "mnist", **options: str) -> Registered:
    build = partial(_mnist, namespace=namespace, **options) if options else _mnist
    sections = {"serving": Serving, f"{namespace}.training": MnistTraining}
    return Registered(build, trains=MNIST, sections=sections)


# In the report's order. A training pipeline's name is its namespace: its parameter
# section (conf/base/parameters_*.yml) and its MLflow parameters carry it.
REGISTRY: dict[str, Registered] = {
    "mnist": _mnist_entry(),  # listings 8.1-8.3
    # the same convnet on Fashion-MNIST
    "fashion_mnist": _mnist_entry("fashion_mnist", raw_dataset="fashion_mnist_raw"),
    "catdog": _catdog_entry("catdog", augmentation_figure=True),  # listing 8.16, the default
    "catdog_baseline": _catdog_entry("catdog_baseline"),  # listing 8.10
    # section 9.3.5's mini Xception-like model
    "catdog_xception": _catdog_entry("catdog_xception", augmentation_figure=True),
    # chapter 9's patterns, chosen by measurement
    "catdog_fast": _catdog_entry("catdog_fast", augmentation_figure=True),
    "predict": Registered(_predict, sections={"predict": Predict}),
    # section 9.4: activations, filters, Grad-CAM; ROC
    "explain": Registered(_explain, sections={"explain": Explain, "cats_vs_dogs": CatsVsDogsData}),
    "report": Registered(_report, sections={"report": Report}),
    # the book's epoch timed: the unit of a cost
    "book_epoch": Registered(_book_epoch, sections={"book_epoch": BookEpoch}),
}
DEFAULT_PIPELINE = "catdog"


def training_packages() -> dict[str, str]:
    """Each training pipeline, in the registry's order, with the package it trains with."""
    return {name: entry.trains for name, entry in REGISTRY.items() if entry.trains}


def training_pipelines() -> tuple[str, ...]:
    """The registered pipelines that train a model, in the registry's order."""
    return tuple(training_packages())


# One MLflow run each: the parameter hook refuses two in one run.
TRAINING_PIPELINES = training_pipelines()


def sections_of(names: list[str]) -> dict[str, type]:
    """The parameter sections the registered pipelines ``names`` parse, with their models
    (unknown names are left out: the caller reports them)."""
    sections: dict[str, type] = {}
    for name in names:
        entry = REGISTRY.get(DEFAULT_PIPELINE if name == "__default__" else name)
        sections.update(entry.sections if entry else {})
    return sections


def register_pipelines() -> dict[str, Pipeline]:
    """Every entry of ``REGISTRY``, and ``__default__`` (``DEFAULT_PIPELINE``)."""
    pipelines: dict[str, Pipeline] = {
        name: BuiltOnFirstUse(entry.build) for name, entry in REGISTRY.items()
    }
    pipelines["__default__"] = pipelines[DEFAULT_PIPELINE]
    return pipelines
