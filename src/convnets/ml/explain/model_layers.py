"""Which layers of a trained model can be explained, and which model holds them.

A cats-vs-dogs model holds its convolutions directly (the augmentation ``Sequential``
before them is a layer of its own, a no-op in inference mode), or inside a wrapped
model: ``models.with_flip_averaging`` calls the trained model on the picture and on
its mirror image. The convolutions are then read in the innermost model that holds
them, fed the picture itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
from keras import layers

from convnets.errors import UserError

CONVOLUTIONS = (layers.Conv2D, layers.SeparableConv2D, layers.DepthwiseConv2D)
POOLINGS = (layers.MaxPooling2D, layers.AveragePooling2D)


class NotExplainable(UserError, ValueError):
    """A model without a convolution, or a layer name it does not have."""


def _has_4d_output(layer: keras.layers.Layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # a layer never called has no output
        return False


def _walk(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.Model, object]]:
    """``(path, holder, layer)`` of every layer, nested models' layers after their own."""
    for layer in model.layers:
        yield f"{prefix}{layer.name}", model, layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer, f"{prefix}{layer.name}/")


def layer_names(model: keras.Model) -> list[str]:
    """Every layer's name, a nested model's layers as ``<model>/<layer>``."""
    return [path for path, _, _ in _walk(model)]


def convolution_names(model: keras.Model) -> list[str]:
    """The convolutions with a 4-D output (``Conv2D``, ``SeparableConv2D``,
    ``DepthwiseConv2D``) of the model that holds the last of them, in layer order."""
    holder, _ = find_layer(model, None)
    return [layer.name for layer in holder.layers if _is_convolution(layer)]


def _is_convolution(layer: object) -> bool:
    return isinstance(layer, CONVOLUTIONS) and _has_4d_output(layer)


def _listing(model: keras.Model) -> str:
    return ", ".join(layer_names(model)) or "none"


def find_layer(model: keras.Model, name: str | None) -> tuple[keras.Model, keras.layers.Layer]:
    """``(holder, layer)``: the layer called ``name`` (default: the last feature map from
    the last convolution on, the input of the classifier's pooling)
    and the model that holds it directly, whose input is the picture.

    Raises ``NotExplainable`` with the model's layer names when there is no such
    layer, or when its holder does not take the model's picture as input.
    """
    found = [
        (holder, layer)
        for path, holder, layer in _walk(model)
        if (_is_convolution(layer) if name is None else name in (layer.name, path))
    ]
    if not found:
        what = (
            "no convolution layer (Conv2D, SeparableConv2D or DepthwiseConv2D with a 4-D output)"
            if name is None
            else f"no layer named {name!r}"
        )
        raise NotExplainable(
            f"The model {model.name!r} has {what}: its layers are {_listing(model)}. "
            + ("Choose one with --params=explain.layer=<name>." if name else "")
        )
    holder, layer = found[-1]
    if name is None:
        layer = _last_feature_map(holder, layer)
    if not _has_4d_output(layer):
        raise NotExplainable(
            f"The layer {name!r} of model {model.name!r} has no 4-D output (height, width, "
            f"channels), which Grad-CAM needs: choose a convolution, one of "
            f"{', '.join(convolution_names(model))}."
        )
    if tuple(holder.input_shape[1:]) != tuple(model.input_shape[1:]):
        raise NotExplainable(
            f"The layer {layer.name!r} is inside {holder.name!r}, whose input "
            f"{holder.input_shape[1:]} is not the picture {model.input_shape[1:]}: choose a "
            f"layer of the outer model, one of {_listing(model)}."
        )
    return holder, layer


def _last_feature_map(holder: keras.Model, convolution: keras.layers.Layer) -> keras.layers.Layer:
    """The last 4-D layer from ``convolution`` on: the map the classifier pools, so a
    residual model's heatmap is its block's sum, not its 1x1 shortcut alone."""
    after = holder.layers[holder.layers.index(convolution) :]
    return [layer for layer in after if _has_4d_output(layer)][-1]


def feature_layers(model: keras.Model) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """The model that holds the last convolution, and its convolution and pooling
    layers with a 4-D output, in layer order (the book's intermediate activations)."""
    holder, _ = find_layer(model, None)
    chosen = [
        layer
        for layer in holder.layers
        if (_is_convolution(layer) or isinstance(layer, POOLINGS)) and _has_4d_output(layer)
    ]
    return holder, chosen


def spread_convolutions(model: keras.Model) -> list[str]:
    """The first, a middle and the last convolution (fewer when the model has fewer)."""
    names = convolution_names(model)
    picked = [names[0], names[len(names) // 2], names[-1]]
    return list(dict.fromkeys(picked))  # without repeats, in order
