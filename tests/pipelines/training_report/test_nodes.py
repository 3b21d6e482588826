"""The reporting nodes, and the tables and metric formats they share with evaluation."""

import numpy as np

from convnets.ml.reporting import classification_tables, evaluation_metrics
from convnets.pipelines.training_report.nodes import report_training


def test_classification_tables_count_and_divide_correctly():
    confusion, per_class = classification_tables(
        np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["cat", "dog"]
    )
    assert confusion.loc["cat"].tolist() == [1, 1]
    assert confusion.loc["dog"].tolist() == [1, 2]
    assert per_class["precision"].round(3).tolist() == [0.5, 0.667]
    assert per_class["recall"].round(3).tolist() == [0.5, 0.667]
    assert per_class["support"].tolist() == [2, 3]


def test_a_class_never_predicted_has_zero_precision_not_nan():
    _, per_class = classification_tables(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert per_class["precision"].tolist() == [0.5, 0.0]


def test_report_training_draws_accuracy_and_loss_with_validation_gaps():
    nan = float("nan")
    history = {
        "loss": [0.9, 0.8, 0.7, 0.6],
        "accuracy": [0.5, 0.6, 0.7, 0.8],
        "val_loss": [nan, 0.9, nan, 0.7],
        "val_accuracy": [nan, 0.6, nan, 0.7],
    }
    figure = report_training(history, "t")
    assert len(figure.axes) == 2
    assert [line.get_label() for line in figure.axes[0].lines] == [
        "Training accuracy",
        "Validation accuracy",
    ]
    validation = figure.axes[0].lines[1]  # drawn through the validated epochs only
    assert list(validation.get_xdata()) == [2, 4]
    assert list(validation.get_ydata()) == [0.6, 0.7]


def test_test_metrics_carry_the_models_name():
    metrics = evaluation_metrics("best_checkpoint", 0.25, 0.875)
    assert metrics == {
        "best_checkpoint_test_loss": {"value": 0.25, "step": 0},
        "best_checkpoint_test_accuracy": {"value": 0.875, "step": 0},
    }
