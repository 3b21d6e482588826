"""Project pipelines: the names users pass to ``kedro run --pipeline``."""

from kedro.pipeline import Pipeline

from convnets.pipelines import catdog, mnist, predict


def register_pipelines() -> dict[str, Pipeline]:
    """``mnist``, ``catdog`` (8.16, the default), ``catdog_baseline`` (8.10), ``predict``."""
    catdog_data = catdog.create_data_pipeline()
    pipelines = {
        "mnist": mnist.create_pipeline(),
        "fashion_mnist": mnist.create_pipeline(
            namespace="fashion_mnist", raw_dataset="fashion_mnist_raw"
        ),
        "catdog": catdog_data + catdog.create_model_pipeline("catdog", augmentation_figure=True),
        "catdog_baseline": catdog_data + catdog.create_model_pipeline("catdog_baseline"),
        "predict": predict.create_pipeline(),
    }
    pipelines["__default__"] = pipelines["catdog"]
    return pipelines
