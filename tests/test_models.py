"""The model builders match the book's listings, checked by parameter counts."""

import pytest

from convnets.models import (
    build_catdog_convnet,
    build_catdog_convnet_augmented,
    build_mnist_convnet,
)


def test_mnist_convnet_has_the_books_104202_parameters():
    model = build_mnist_convnet()
    assert [layer.count_params() for layer in model.layers if layer.count_params()] == [
        320,
        18_496,
        73_856,
        11_530,
    ]
    assert model.count_params() == 104_202


@pytest.mark.parametrize("builder", [build_catdog_convnet, build_catdog_convnet_augmented])
def test_catdog_convnets_have_the_books_991041_parameters(builder):
    # Listing 8.7's summary: 991,041 parameters at 180x180; augmentation and dropout add none.
    assert builder((180, 180)).count_params() == 991_041


def test_augmented_model_has_augmentation_and_dropout_and_baseline_has_neither():
    augmented = {layer.__class__.__name__ for layer in build_catdog_convnet_augmented().layers}
    baseline = {layer.__class__.__name__ for layer in build_catdog_convnet().layers}
    assert {"Sequential", "Dropout"} <= augmented
    assert not {"Sequential", "Dropout"} & baseline
