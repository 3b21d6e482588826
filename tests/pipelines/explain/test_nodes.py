"""The explain nodes on a tiny split and a tiny servable model."""

import keras
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from convnets.datasets.image_folder import ImageFolder
from convnets.ml.explain import NotExplainable
from convnets.ml.models import build_catdog_convnet, with_flip_averaging
from convnets.parameters import CatsVsDogsData, Explain
from convnets.pipelines.explain import nodes
from tests.conftest import jpeg_bytes, servable_model, typed_parameters

EXPLAIN = typed_parameters(
    Explain, "explain", batch_size=3, filter_steps=2, grad_cam_images=4, worst_mistakes=3
)
DATA = typed_parameters(CatsVsDogsData, "cats_vs_dogs")


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> ImageFolder:
    """Four test pictures per class, and one that is not a picture."""
    root = tmp_path_factory.mktemp("split")
    for number, label in enumerate(DATA.classes):
        folder = root / "test" / label
        folder.mkdir(parents=True)
        for index in range(4):
            (folder / f"{label}.{index}.jpg").write_bytes(jpeg_bytes(10 * number + index, 48))
    (root / "test" / DATA.classes[0] / "damaged.jpg").write_bytes(b"not a picture")
    return ImageFolder(root, "0" * 64)


@pytest.fixture(scope="module")
def servable(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = with_flip_averaging(build_catdog_convnet((80, 80)))
    return servable_model(model, tmp_path_factory.mktemp("servable") / "model")


@pytest.fixture(scope="module")
def prepared(servable):
    return nodes.prepare_model(servable, EXPLAIN)


@pytest.fixture(scope="module")
def scores(split, prepared):
    return nodes.score_test_split(split, *prepared, DATA, EXPLAIN)


def test_a_model_is_refused_before_any_work_with_its_layer_names(servable):
    with pytest.raises(NotExplainable, match="no layer named 'nope'"):
        nodes.prepare_model(servable, EXPLAIN.model_copy(update={"layer": "nope"}))


def test_every_test_picture_is_scored_and_an_unreadable_one_gets_an_error(scores):
    assert len(scores) == 9
    unreadable = scores[scores.error != ""]
    assert list(unreadable.file) == [f"test/{DATA.classes[0]}/damaged.jpg"]
    readable = scores[scores.error == ""]
    assert readable.probability_dog.between(0, 1).all() and (readable.loss > 0).all()
    expected = np.where(
        readable.true_label == "dog", readable.probability_dog, 1 - readable.probability_dog
    )
    assert np.allclose(readable.loss, -np.log(expected), atol=1e-5)


def test_every_figure_is_drawn_for_a_flip_averaged_model(split, prepared, scores):
    model, config = prepared
    figures = [
        nodes.plot_activations_of_one_picture(split, model, config, scores, EXPLAIN),
        nodes.plot_filter_patterns_of_three_layers(model, config, EXPLAIN),
        nodes.plot_grad_cam(split, model, config, scores, EXPLAIN),
        nodes.plot_worst_mistakes(split, model, config, scores, EXPLAIN),
    ]
    metrics, table, *curves = nodes.evaluate_probabilities(scores, config, EXPLAIN)
    assert all(isinstance(figure, Figure) for figure in figures + curves)
    assert set(metrics) >= {
        "test_roc_auc",
        "test_average_precision",
        "test_expected_calibration_error",
        "test_accuracy",
    }
    assert metrics["test_unreadable_images"]["value"] == 1
    assert table["count"].sum() == 8 and len(table) == EXPLAIN.calibration_bins


def test_the_grad_cam_sample_puts_the_most_confidently_wrong_first():
    scores = pd.DataFrame(
        {
            "file": list("abcdef"),
            "true_label": ["cat", "cat", "dog", "dog", "cat", "dog"],
            "label": ["dog", "cat", "cat", "dog", "dog", "dog"],
            "loss": [0.9, 0.1, 2.0, 0.2, 0.7, 0.3],
            "error": [""] * 5 + ["unreadable"],
        }
    )
    sample = nodes._grad_cam_sample(scores, 4)
    assert list(sample.file[:2]) == ["c", "a"]
    assert len(sample) == 4 and "f" not in set(sample.file)
