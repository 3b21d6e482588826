"""Nodes of the predict pipeline: a trained cats-vs-dogs model on the user's pictures."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from convnets.reporting import as_mlflow_metrics

logger = logging.getLogger(__name__)

KAGGLE_NAME = re.compile(r"(?:^|/)(?P<label>cat|dog)\.\d+\.", re.IGNORECASE)


def _as_input(image: Image.Image, image_size: tuple[int, int]) -> np.ndarray:
    # The same resize as image_dataset_from_directory (bilinear, no antialias).
    pixels = np.asarray(image.convert("RGB"), dtype="float32")
    return tf.image.resize(pixels, image_size, method="bilinear").numpy()


def predict_images(
    images: dict[str, Callable[[], Image.Image]], model: keras.Model, predict: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, dict[str, float]], Figure]:
    """Probability of dog for every picture; unreadable files are reported, not fatal.

    Returns the table (file, probability_dog, label, true_label, error), the
    accuracy on the files whose Kaggle-style name gives their label (as MLflow
    metrics, empty when none do), and a grid of the first pictures with their labels.
    """
    if not images:
        raise ValueError(
            "No files to classify: put pictures in the folder given by "
            "--params=predict_dir=<folder> (default data/01_raw/predict/)."
        )
    image_size = tuple(model.input_shape[1:3])
    class_names = list(predict["class_names"])
    rows, arrays, pictures = [], [], {}
    for name in sorted(images):
        match = KAGGLE_NAME.search(name)
        row = {
            "file": name,
            "probability_dog": np.nan,
            "label": "",
            "true_label": match["label"].lower() if match else "",
            "error": "",
        }
        try:
            picture = images[name]()
            arrays.append(_as_input(picture, image_size))
            pictures[name] = picture
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            cause = exc.__cause__ or exc  # Kedro wraps the decoder's error in a DatasetError
            row["error"] = f"{type(cause).__name__}: {str(cause)[:200]}"
            logger.warning("Cannot read %s: %s", name, row["error"])
        rows.append(row)
    table = pd.DataFrame(rows)
    readable = table["error"] == ""
    if arrays:
        probabilities = model.predict(np.stack(arrays), batch_size=32, verbose=0)[:, 0]
        table.loc[readable, "probability_dog"] = probabilities
        table.loc[readable, "label"] = np.where(
            probabilities > predict.get("threshold", 0.5), class_names[1], class_names[0]
        )
    known = readable & (table["true_label"] != "")
    metrics = {}
    if known.any():
        accuracy = float((table.loc[known, "label"] == table.loc[known, "true_label"]).mean())
        metrics = as_mlflow_metrics(
            {"predict_accuracy": accuracy, "predict_labelled_images": known.sum()}
        )
        logger.info("Accuracy on %d pictures named cat.N/dog.N: %.4f", known.sum(), accuracy)
    logger.info("Classified %d pictures, %d unreadable", readable.sum(), (~readable).sum())
    return table, metrics, _prediction_grid(table[readable], pictures, predict)


def _prediction_grid(
    table: pd.DataFrame, pictures: dict[str, Image.Image], predict: dict[str, Any]
) -> Figure:
    shown = table.head(predict.get("grid_images", 16))
    columns = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, row in zip(axes.flat, shown.itertuples(), strict=False):
        axis.imshow(pictures[row.file].convert("RGB"))
        wrong = row.true_label and row.true_label != row.label
        axis.set_title(
            f"{row.label} {row.probability_dog:.2f}\n{row.file[-24:]}",
            fontsize=9,
            color="red" if wrong else "black",
        )
    figure.suptitle("Predictions (probability of dog); red: wrong by the file name")
    figure.tight_layout()
    return figure
