"""How far a binary classifier's probabilities can be trusted: ROC and precision-recall
curves with their areas, and a reliability diagram with its expected calibration error.

Plain scikit-learn and numpy rather than ``mlflow.models.evaluate``: it draws these
curves only from a model's ``predict_proba`` (the servable model answers labels) and
logs to the run outside the catalog, so kedro viz would not show them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def calibration_table(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width bin of the predicted probability: its bounds, the pictures in it,
    their mean probability and the fraction of them that are of the positive class."""
    labels, probabilities = np.asarray(labels, dtype=float), np.asarray(probabilities, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for position in range(bins):
        inside = index == position
        count = int(inside.sum())
        rows.append(
            {
                "bin_lower": edges[position],
                "bin_upper": edges[position + 1],
                "count": count,
                "mean_probability": float(probabilities[inside].mean()) if count else np.nan,
                "fraction_positive": float(labels[inside].mean()) if count else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """The bins' gaps between mean probability and observed frequency, weighted by size."""
    filled = table[table["count"] > 0]
    weights = filled["count"] / filled["count"].sum()
    return float((weights * (filled.mean_probability - filled.fraction_positive).abs()).sum())


def curve_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """``roc_auc`` and ``average_precision`` (the precision-recall curve's area); none when
    the pictures are all of one class (the curves need both)."""
    from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: PLC0415

    if len(np.unique(labels)) < 2:
        logger.warning("The scored pictures are all of one class: no ROC or precision-recall")
        return {}
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "average_precision": float(average_precision_score(labels, probabilities)),
    }


def plot_roc_and_precision_recall(
    labels: np.ndarray, probabilities: np.ndarray, positive: str
) -> Figure:
    """The ROC curve (with chance's diagonal) and the precision-recall curve, side by side."""
    from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: PLC0415

    figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(10, 4.5))
    metrics = curve_metrics(labels, probabilities)
    if metrics:
        false_positive, true_positive, _ = roc_curve(labels, probabilities)
        roc_axis.plot(false_positive, true_positive, label=f"AUC {metrics['roc_auc']:.3f}")
        precision, recall, _ = precision_recall_curve(labels, probabilities)
        # Steps, as average precision sums them (a straight line between points overstates).
        pr_axis.step(
            recall, precision, where="post", label=f"AP {metrics['average_precision']:.3f}"
        )
        pr_axis.axhline(np.mean(labels), color="grey", linestyle=":", label="chance")
        pr_axis.legend(loc="lower left")
    else:
        pr_axis.text(0.5, 0.5, "one class only: no curve", ha="center", va="center")
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    roc_axis.set(
        xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({positive})"
    )
    pr_axis.set(xlabel="recall", ylabel="precision", title=f"Precision-recall ({positive})")
    for axis in (roc_axis, pr_axis):
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
    roc_axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def plot_reliability(table: pd.DataFrame, error: float, positive: str) -> Figure:
    """Observed frequency against mean probability per bin (a perfect model lies on the
    diagonal), above the count of pictures per bin."""
    figure, (axis, counts) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": (3, 1)}
    )
    filled = table[table["count"] > 0]
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    axis.plot(filled.mean_probability, filled.fraction_positive, "o-", label="model")
    axis.set(
        ylabel=f"fraction that are {positive}",
        title=f"Reliability: expected calibration error {error:.3f}",
        ylim=(0, 1),
    )
    axis.legend(loc="upper left")
    width = table.bin_upper - table.bin_lower
    counts.bar(table.bin_lower, table["count"], width=width, align="edge", edgecolor="white")
    counts.set(xlabel=f"predicted probability of {positive}", ylabel="pictures", xlim=(0, 1))
    figure.tight_layout()
    return figure
