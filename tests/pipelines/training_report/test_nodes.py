"""The reporting nodes, and the tables and metric formats they share with evaluation."""

import numpy as np

from convnets.pipelines.training_report.nodes import report_training
from convnets.reporting import classification_tables, evaluation_metrics


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


def test_report_training_uses_one_based_epochs_as_steps():
    history = {
        "loss": [0.9, 0.5],
        "accuracy": [0.5, 0.7],
        "val_loss": [1.0, 0.8],
        "val_accuracy": [0.4, 0.6],
        "learning_rate": [0.001, 0.001],
        "unknown": [1.0, 2.0],
    }
    metrics, figure = report_training(history, "t")
    assert set(metrics) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert metrics["val_loss"] == [{"step": 1, "value": 1.0}, {"step": 2, "value": 0.8}]
    assert len(figure.axes) == 2


def test_test_metrics_carry_the_models_name():
    metrics = evaluation_metrics("best_checkpoint", 0.25, 0.875)
    assert metrics == {
        "best_checkpoint_test_loss": {"value": 0.25, "step": 0},
        "best_checkpoint_test_accuracy": {"value": 0.875, "step": 0},
    }


def test_epochs_that_were_not_validated_are_left_out():
    nan = float("nan")
    history = {
        "loss": [0.9, 0.8, 0.7, 0.6],
        "accuracy": [0.5, 0.6, 0.7, 0.8],
        "val_loss": [nan, 0.9, nan, 0.7],
        "val_accuracy": [nan, 0.6, nan, 0.7],
    }
    metrics, _ = report_training(history, "t")
    assert metrics["val_loss"] == [{"step": 2, "value": 0.9}, {"step": 4, "value": 0.7}]
    assert [entry["step"] for entry in metrics["loss"]] == [1, 2, 3, 4]
