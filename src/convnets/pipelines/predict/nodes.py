"""Nodes of the predict pipeline: a trained cats-vs-dogs model on the user's pictures."""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable

import keras
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from convnets.parameters import CatsVsDogsData, Predict
from convnets.preprocessing import to_model_input
from convnets.reporting import as_mlflow_metrics

logger = logging.getLogger(__name__)

PREDICT_CHUNK = 64  # pictures resized and classified at a time
KAGGLE_NAME = re.compile(r"(?:^|/)(?P<label>cat|dog)\.\d+\.", re.IGNORECASE)


def predict_images(
    images: dict[str, Callable[[], bytes]],
    model: keras.Model,
    data: CatsVsDogsData,
    predict: Predict,
) -> tuple[pd.DataFrame, dict[str, dict[str, float]], Figure]:
    """Probability of dog for every picture; unreadable files are reported, not fatal.

    Each file's bytes become model input as in training (``preprocessing``), after its
    header is checked against ``cats_vs_dogs.max_image_pixels``: a larger picture is
    refused with an error row before it is decoded.

    A probability above ``cats_vs_dogs.decision_threshold`` means the second class, as
    in the models' evaluation. Returns the table (file, probability_dog, label,
    true_label, error), the accuracy on the files whose Kaggle-style name gives their
    label (as MLflow metrics, empty when none do), and a grid of pictures spread over
    the folder.
    """
    if not images:
        raise ValueError(
            "No files to classify: put pictures in the folder given by "
            "--params=predict_dir=<folder> (default data/01_raw/predict/)."
        )
    image_size = tuple(model.input_shape[1:3])
    class_names = list(data.classes)
    rows, pending = [], []

    def classify(pending: list[tuple[int, np.ndarray]]) -> None:
        # In chunks, so memory does not grow with the number of pictures.
        probabilities = model.predict(np.stack([a for _, a in pending]), verbose=0)[:, 0]
        for (row, _), probability in zip(pending, probabilities, strict=True):
            rows[row]["probability_dog"] = float(probability)
            above = probability > data.decision_threshold
            rows[row]["label"] = class_names[1] if above else class_names[0]
        pending.clear()

    for name in sorted(images):
        match = KAGGLE_NAME.search(name)
        rows.append(
            {
                "file": name,
                "probability_dog": np.nan,
                "label": "",
                "true_label": match["label"].lower() if match else "",
                "error": "",
            }
        )
        try:
            pixels = to_model_input(images[name](), image_size, data.max_image_pixels)
            pending.append((len(rows) - 1, pixels))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            cause = exc.__cause__ or exc  # Kedro wraps the decoder's error in a DatasetError
            rows[-1]["error"] = f"{type(cause).__name__}: {str(cause)[:200]}"
            logger.warning("Cannot read %s: %s", name, rows[-1]["error"])
        if len(pending) == PREDICT_CHUNK:
            classify(pending)
    if pending:
        classify(pending)
    table = pd.DataFrame(rows)
    readable = table["error"] == ""
    known = readable & (table["true_label"] != "")
    metrics = {}
    if known.any():
        accuracy = float((table.loc[known, "label"] == table.loc[known, "true_label"]).mean())
        metrics = as_mlflow_metrics(
            {"predict_accuracy": accuracy, "predict_labelled_images": known.sum()}
        )
        logger.info("Accuracy on %d pictures named cat.N/dog.N: %.4f", known.sum(), accuracy)
    logger.info("Classified %d pictures, %d unreadable", readable.sum(), (~readable).sum())
    # Grid pictures spread over the sorted readable files, so cat.N and dog.N both show.
    classified = table[readable]
    count = min(predict.grid_images, len(classified))
    shown = classified.iloc[np.unique(np.linspace(0, len(classified) - 1, count).astype(int))]
    pictures = {name: Image.open(io.BytesIO(images[name]())) for name in shown.file}
    return table, metrics, _prediction_grid(shown, pictures)


def _prediction_grid(shown: pd.DataFrame, pictures: dict[str, Image.Image]) -> Figure:
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
