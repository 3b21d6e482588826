"""Figures and tables shared by the evaluation nodes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display here, in CI or under kedro viz

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def plot_training_curves(history: dict[str, list[float]], title: str) -> Figure:
    """Training and validation accuracy and loss per epoch, as the book's figure 8.11."""
    figure, (ax_accuracy, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axis, key, name in ((ax_accuracy, "accuracy", "accuracy"), (ax_loss, "loss", "loss")):
        axis.plot(epochs, history[key], "bo", label=f"Training {name}")
        if f"val_{key}" in history:
            values = np.asarray(history[f"val_{key}"], dtype=float)
            validated = ~np.isnan(values)  # only some epochs with validation_freq above 1
            axis.plot(epochs[validated], values[validated], "b", label=f"Validation {name}")
        axis.set_title(f"Training and validation {name}")
        axis.set_xlabel("epoch")
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def classification_tables(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The confusion matrix (rows true, columns predicted) and per-class precision/recall."""
    # Imported here: scikit-learn takes seconds to import, which the CLI should not pay.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: PLC0415

    labels = list(range(len(class_names)))
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    confusion = pd.DataFrame(counts, index=class_names, columns=class_names)
    confusion.index.name = "true"
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0.0
    )
    per_class = pd.DataFrame(
        {"class": class_names, "precision": precision, "recall": recall, "support": support}
    )
    return confusion, per_class


def plot_confusion_matrix(confusion: pd.DataFrame, title: str) -> Figure:
    """A labelled heat map of the confusion matrix."""
    size = max(4.0, 0.6 * len(confusion) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(confusion.to_numpy(), cmap="Blues")
    axis.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=45)
    axis.set_yticks(range(len(confusion.index)), confusion.index)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = confusion.to_numpy().max() / 2
    for (row, column), value in np.ndenumerate(confusion.to_numpy()):
        axis.text(
            column,
            row,
            str(value),
            ha="center",
            va="center",
            color="white" if value > threshold else "black",
            fontsize=8,
        )
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def as_mlflow_metrics(values: dict[str, float]) -> dict[str, dict[str, float]]:
    """Single values in kedro-mlflow's metrics format (one step, step 0)."""
    return {key: {"value": float(value), "step": 0} for key, value in values.items()}


def evaluation_metrics(
    model: str, test_loss: float, test_accuracy: float
) -> dict[str, dict[str, float]]:
    """``<model>_test_loss`` and ``<model>_test_accuracy`` in kedro-mlflow's metrics format.

    ``model`` is ``best_checkpoint`` or ``final_model``: one meaning in every pipeline.
    """
    return as_mlflow_metrics(
        {f"{model}_test_loss": test_loss, f"{model}_test_accuracy": test_accuracy}
    )
