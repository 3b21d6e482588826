"""Project pipelines: the names users pass to ``kedro run --pipelines``.

Written out rather than found by ``find_pipelines()``, which cannot build the same
package under several namespaces.
"""

from kedro.pipeline import Pipeline

from convnets.hooks import TRAINING_PIPELINES  # one MLflow run each: the hook checks it
from convnets.pipelines import cats_vs_dogs_data, image_classifier, mnist, predict, report

__all__ = ["TRAINING_PIPELINES", "register_pipelines"]


def register_pipelines() -> dict[str, Pipeline]:
    """``mnist``, ``fashion_mnist``, ``catdog`` (8.16, the default), ``catdog_baseline`` (8.10),
    ``catdog_fast`` (chapter 9's patterns, chosen by measurement), ``predict``, ``report``."""
    data = cats_vs_dogs_data.create_pipeline()
    pipelines = {
        "mnist": mnist.create_pipeline(),
        "fashion_mnist": mnist.create_pipeline(
            namespace="fashion_mnist", raw_dataset="fashion_mnist_raw"
        ),
        "catdog": data + image_classifier.create_pipeline("catdog", augmentation_figure=True),
        "catdog_baseline": data + image_classifier.create_pipeline("catdog_baseline"),
        "catdog_fast": data
        + image_classifier.create_pipeline(
            "catdog_fast", augmentation_figure=True, training_cost=True
        ),
        "predict": predict.create_pipeline(),
        "report": report.create_pipeline(),
    }
    pipelines["__default__"] = pipelines["catdog"]
    return pipelines
