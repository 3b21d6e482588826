"""The model builders match the book's listings, checked by parameter counts."""

import pytest

from convnets.models import (
    build_catdog_convnet,
    build_catdog_convnet_augmented,
    build_catdog_model,
    build_mnist_convnet,
)
from convnets.parameters import Architecture
from tests.conftest import typed_parameters


def test_mnist_convnet_has_the_books_104202_parameters():
    model = build_mnist_convnet()
    assert [layer.count_params() for layer in model.layers if layer.count_params()] == [
        320,
        18_496,
        73_856,
        11_530,
    ]
    assert model.count_params() == 104_202


@pytest.mark.parametrize("key", ["catdog", "catdog_baseline"])
def test_catdog_convnets_have_the_books_991041_parameters(key):
    # Listing 8.7's summary: 991,041 parameters at 180x180; augmentation and dropout add none.
    architecture = typed_parameters(Architecture, f"{key}.architecture")
    assert build_catdog_model((180, 180), architecture).count_params() == 991_041


def test_augmented_model_has_augmentation_and_dropout_and_baseline_has_neither():
    book = {"dropout": 0.5, "rotation": 0.1, "zoom": 0.2}
    augmented = {
        layer.__class__.__name__
        for layer in build_catdog_convnet_augmented((180, 180), **book).layers
    }
    baseline = {layer.__class__.__name__ for layer in build_catdog_convnet((180, 180)).layers}
    assert {"Sequential", "Dropout"} <= augmented
    assert not {"Sequential", "Dropout"} & baseline
