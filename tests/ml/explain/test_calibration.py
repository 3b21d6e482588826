"""The reliability bins, the expected calibration error and the curves' areas."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from convnets.ml.explain import (
    calibration_table,
    curve_metrics,
    expected_calibration_error,
    plot_reliability,
    plot_roc_and_precision_recall,
)


def test_a_calibrated_model_has_no_calibration_error():
    probabilities = np.array([0.2] * 5 + [0.8] * 5)
    labels = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])  # one in five, then four in five, dogs
    table = calibration_table(labels, probabilities, bins=4)
    assert list(table["count"]) == [5, 0, 0, 5]
    assert table.fraction_positive[0] == pytest.approx(0.2)
    assert table.fraction_positive[3] == pytest.approx(0.8)
    assert expected_calibration_error(table) == pytest.approx(0.0)


def test_the_calibration_error_is_the_gap_weighted_by_the_pictures_per_bin():
    probabilities = np.array([0.9, 0.9, 0.9, 0.1])
    labels = np.array([1, 0, 0, 0])  # says 0.9 where a third are dogs; says 0.1 of a cat
    table = calibration_table(labels, probabilities, bins=10)
    assert table["count"].sum() == 4
    assert expected_calibration_error(table) == pytest.approx(0.75 * (0.9 - 1 / 3) + 0.25 * 0.1)
    # The edges: 0 in the first bin, 1 in the last.
    assert list(calibration_table([0, 1], [0.0, 1.0], bins=2)["count"]) == [1, 1]


def test_the_curves_areas_and_a_single_class():
    labels, probabilities = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    metrics = curve_metrics(labels, probabilities)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert 0.5 < metrics["average_precision"] <= 1
    assert curve_metrics(np.array([1, 1]), np.array([0.2, 0.7])) == {}
    assert isinstance(
        plot_roc_and_precision_recall(np.array([1, 1]), probabilities[:2], "dog"), Figure
    )
    table = calibration_table(labels, probabilities, bins=5)
    assert isinstance(plot_reliability(table, expected_calibration_error(table), "dog"), Figure)
