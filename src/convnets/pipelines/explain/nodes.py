"""Nodes of the explain pipeline (section 9.4): what a trained cats-vs-dogs model learned,
where it looks, which test pictures it gets wrong, whether its probabilities hold.

The model is the servable one ``predict`` uses; its own configuration turns the test
split's files into model input, as the served model does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.pyfunc import PyFuncModel

from convnets.datasets import ImageFolder
from convnets.errors import UserError
from convnets.ml.explain import (
    Explained,
    NotExplainable,
    calibration_table,
    curve_metrics,
    expected_calibration_error,
    filter_patterns,
    find_layer,
    grad_cam,
    intermediate_activations,
    plot_activations,
    plot_filter_patterns,
    plot_heatmaps,
    plot_reliability,
    plot_roc_and_precision_recall,
    spread_convolutions,
)
from convnets.ml.preprocessing import to_model_input
from convnets.ml.reporting import as_mlflow_metrics
from convnets.parameters import CatsVsDogsData, Explain
from convnets.serving.model import ServingConfig, classify, error_text

logger = logging.getLogger(__name__)

LOSS_EPSILON = 1e-7  # Keras' clip of probabilities in binary cross-entropy


class NoTestPictures(UserError, ValueError):
    """The test split to explain holds no picture the model can read."""


def prepare_model(model: PyFuncModel, explain: Explain) -> tuple[keras.Model, ServingConfig]:
    """The servable model's Keras model and configuration, refused before any work when
    it has no convolution, no layer ``explain.layer``, or is not a binary classifier."""
    keras_model = model.unwrap_python_model().keras_model
    config = ServingConfig(**model.model_config)
    _, layer = find_layer(keras_model, explain.layer)
    if not config.binary:
        raise NotExplainable(
            f"explain reads the cats-vs-dogs test split: {keras_model.name!r} classifies "
            f"{len(config.class_names)} classes, not two with a decision threshold."
        )
    logger.info(
        "Explaining %s: Grad-CAM on layer %s; filter patterns of %s",
        keras_model.name,
        layer.name,
        ", ".join(spread_convolutions(keras_model)),
    )
    return keras_model, config


def _test_files(split: ImageFolder, data: CatsVsDogsData) -> list[tuple[str, int]]:
    """``(path relative to the split, class index)`` of every test picture."""
    return [
        (path.relative_to(split.path).as_posix(), index)
        for index, name in enumerate(data.classes)
        for path in split.files("test", name)
    ]


def _pixels(split: ImageFolder, file: str, config: ServingConfig) -> np.ndarray:
    """A test picture as the served model decodes it; the model's input is it times
    ``config.input_scale``, as ``serving.classify`` feeds it."""
    content = (Path(split.path) / file).read_bytes()
    return to_model_input(content, tuple(config.image_size), config.max_pixels, config.channels)


def score_test_split(
    split: ImageFolder,
    model: keras.Model,
    config: ServingConfig,
    data: CatsVsDogsData,
    explain: Explain,
) -> pd.DataFrame:
    """One row per test picture: file, true label, label, probability of the second
    class, binary cross-entropy, and ``error`` for a picture that cannot be read.

    ``explain.batch_size`` pictures are decoded and scored at a time: memory holds one
    batch, whatever the split's size.
    """
    files = _test_files(split, data)
    if not files:
        raise NoTestPictures(
            f"{Path(split.path) / 'test'} holds no pictures: run the ingestion first "
            "(kedro run --pipelines=catdog --tags=ingestion)"
        )
    probability = config.output_columns()[1]
    rows = [
        {
            "file": file,
            "true_label": config.class_names[label],
            "label": "",
            probability: np.nan,
            "loss": np.nan,
            "error": "",
        }
        for file, label in files
    ]
    for start in range(0, len(files), explain.batch_size):
        contents: dict[int, bytes] = {}
        for row in range(start, min(start + explain.batch_size, len(files))):
            try:
                contents[row] = (Path(split.path) / files[row][0]).read_bytes()
            except OSError as exc:
                rows[row]["error"] = error_text(exc)
        # The served model's own decoding, batching and threshold (serving.classify).
        answers = classify(model, config, list(contents.values()))
        for row, answer in zip(contents, answers.itertuples(index=False), strict=True):
            rows[row]["error"] = answer.error
            if not answer.error:
                value = float(getattr(answer, probability))
                clipped = min(max(value, LOSS_EPSILON), 1 - LOSS_EPSILON)
                rows[row]["label"] = answer.label
                rows[row][probability] = value
                rows[row]["loss"] = -np.log(clipped if files[row][1] else 1 - clipped)
    for row in rows:
        if row["error"]:
            logger.warning("Cannot read %s: %s", row["file"], row["error"])
    table = pd.DataFrame(rows)
    readable = int((table.error == "").sum())
    if not readable:
        raise NoTestPictures(
            f"None of the {len(table)} test pictures of {split.path} can be read (the log "
            "says why): make the split again (kedro run --pipelines=catdog --tags=ingestion)"
        )
    logger.info("Scored %d test pictures", readable)
    return table


def _readable(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows with no error (read back from the CSV file, an empty cell is NaN)."""
    return scores[scores.error.isna() | (scores.error == "")]


def plot_activations_of_one_picture(
    split: ImageFolder,
    model: keras.Model,
    config: ServingConfig,
    scores: pd.DataFrame,
    explain: Explain,
) -> Figure:
    """The first readable test picture through every convolution and pooling layer."""
    file = _readable(scores).file.iloc[0]
    picture = _pixels(split, file, config)
    activations = intermediate_activations(model, picture.astype("float32") * config.input_scale)
    return plot_activations(
        picture,
        activations,
        explain.activation_channels,
        f"{model.name}: {Path(file).name} through its convolution and pooling layers",
    )


def plot_filter_patterns_of_three_layers(
    model: keras.Model, config: ServingConfig, explain: Explain
) -> Figure:
    """What the first filters of three convolutions respond to most (gradient ascent)."""
    patterns = {}
    for name in spread_convolutions(model):
        _, layer = find_layer(model, name)
        filters = list(range(min(explain.filters_per_layer, int(layer.output.shape[-1]))))
        patterns[name] = (
            filters,
            filter_patterns(
                model,
                name,
                filters,
                explain.filter_steps,
                explain.filter_learning_rate,
                pixel_scale=255.0 * config.input_scale,
                seed=explain.seed,
            ),
        )
    return plot_filter_patterns(
        patterns, f"{model.name}: filter patterns ({explain.filter_steps} steps of ascent)"
    )


def _explained(
    split: ImageFolder,
    model: keras.Model,
    config: ServingConfig,
    chosen: pd.DataFrame,
    explain: Explain,
) -> list[Explained]:
    """``chosen``'s pictures with their heatmaps, ``explain.batch_size`` at a time."""
    probability = config.output_columns()[1]
    explained = []
    for start in range(0, len(chosen), explain.batch_size):
        batch = chosen.iloc[start : start + explain.batch_size]
        pictures = np.stack([_pixels(split, file, config) for file in batch.file])
        inputs = pictures.astype("float32") * config.input_scale
        heatmaps = grad_cam(model, inputs, explain.layer, config.decision_threshold)
        for (_, row), picture, heatmap in zip(batch.iterrows(), pictures, heatmaps, strict=True):
            explained.append(
                Explained(
                    picture=picture,
                    heatmap=heatmap,
                    caption=(
                        f"{row.true_label}: {row.label} {row[probability]:.2f}"
                        f" (loss {row.loss:.2f})\n{Path(row.file).name[-24:]}"
                    ),
                    wrong=row.label != row.true_label,
                )
            )
    return explained


def _grad_cam_sample(scores: pd.DataFrame, count: int) -> pd.DataFrame:
    """Up to half ``count`` most confidently wrong (highest loss), the rest spread evenly."""
    readable = _readable(scores)
    wrong = readable[readable.label != readable.true_label].nlargest(max(1, count // 2), "loss")
    others = readable.drop(wrong.index)
    wanted = min(count - len(wrong), len(others))
    spread = np.unique(np.linspace(0, len(others) - 1, wanted).astype(int)) if wanted else []
    return pd.concat([wrong, others.iloc[spread]])


def plot_grad_cam(
    split: ImageFolder,
    model: keras.Model,
    config: ServingConfig,
    scores: pd.DataFrame,
    explain: Explain,
) -> Figure:
    """Grad-CAM heatmaps of a sample of test pictures, the most confidently wrong first."""
    chosen = _grad_cam_sample(scores, explain.grad_cam_images)
    layer = explain.layer or find_layer(model, None)[1].name
    return plot_heatmaps(
        _explained(split, model, config, chosen, explain),
        f"{model.name}: where it looks (Grad-CAM on {layer}); red: wrong, most confident first",
    )


def plot_worst_mistakes(
    split: ImageFolder,
    model: keras.Model,
    config: ServingConfig,
    scores: pd.DataFrame,
    explain: Explain,
) -> Figure:
    """The test pictures of highest loss, with their label, probability and heatmap."""
    chosen = _readable(scores).nlargest(explain.worst_mistakes, "loss")
    return plot_heatmaps(
        _explained(split, model, config, chosen, explain),
        f"{model.name}: the {len(chosen)} test pictures of highest loss (true: predicted p)",
    )


def evaluate_probabilities(
    scores: pd.DataFrame, config: ServingConfig, explain: Explain
) -> tuple[dict[str, dict[str, float]], pd.DataFrame, Figure, Figure]:
    """ROC and precision-recall curves with their areas, the reliability diagram with its
    expected calibration error, and the test accuracy and loss, as MLflow metrics."""
    readable = _readable(scores)
    positive = config.class_names[1]
    labels = (readable.true_label == positive).to_numpy(dtype=int)
    probabilities = readable[config.output_columns()[1]].to_numpy(dtype=float)
    table = calibration_table(labels, probabilities, explain.calibration_bins)
    error = expected_calibration_error(table)
    metrics = {
        f"test_{name}": value for name, value in curve_metrics(labels, probabilities).items()
    }
    metrics |= {
        "test_expected_calibration_error": error,
        "test_accuracy": float((readable.label == readable.true_label).mean()),
        "test_loss": float(readable.loss.mean()),
        "test_scored_images": len(readable),
        "test_unreadable_images": len(scores) - len(readable),
    }
    logger.info("Test split: %s", {name: round(value, 4) for name, value in metrics.items()})
    return (
        as_mlflow_metrics(metrics),
        table,
        plot_roc_and_precision_recall(labels, probabilities, positive),
        plot_reliability(table, error, positive),
    )
