"""Section 9.4 of the book: what a trained convnet's layers see and where it looks.

- ``intermediate_activations``: one picture through every convolution and pooling
  layer (listings 9.7 to 9.9);
- ``filter_patterns``: the input each filter responds to most, found by gradient
  ascent on the input (listings 9.12 to 9.15);
- ``grad_cam``: class activation heatmaps (listings 9.16 to 9.20);
- ``overlay``: a heatmap drawn over its picture (listing 9.21).

Every model is called in inference mode (``training=False``): augmentation and
dropout are off, batch normalisation uses its moving statistics.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib import colormaps
from PIL import Image

from convnets.ml.explain.model_layers import feature_layers, find_layer

HEATMAP_ALPHA = 0.4  # the book's weight of the heatmap over the picture


def intermediate_activations(model: keras.Model, image: np.ndarray) -> dict[str, np.ndarray]:
    """``{layer name: (height, width, channels)}``: ``image`` (one model input) through
    every convolution and pooling layer of the model that holds the convolutions."""
    holder, chosen = feature_layers(model)
    probe = keras.Model(holder.inputs, [layer.output for layer in chosen])
    outputs = probe(tf.convert_to_tensor(image[None], tf.float32), training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return {
        layer.name: tf.cast(output[0], tf.float32).numpy()  # bfloat16 under mixed precision
        for layer, output in zip(chosen, outputs, strict=True)
    }


def filter_patterns(
    model: keras.Model,
    layer_name: str,
    filters: Sequence[int],
    steps: int,
    learning_rate: float,
    *,
    pixel_scale: float = 255.0,
    seed: int = 0,
) -> np.ndarray:
    """``(len(filters), height, width, channels)`` uint8: for each filter of
    ``layer_name``, the input that maximises its mean activation.

    As the book: from a grey picture with noise (0.4 to 0.6 of full scale), ``steps``
    steps of gradient ascent with the gradient normalised, ``learning_rate`` in
    picture units (full scale 1), then standardised for display. The model's input is
    the picture times ``pixel_scale`` (255: the cats-vs-dogs models rescale themselves).
    All filters climb at once, one picture each.
    """
    holder, layer = find_layer(model, layer_name)
    extractor = keras.Model(holder.inputs, layer.output)
    channels = int(layer.output.shape[-1])
    if any(not 0 <= index < channels for index in filters):
        raise ValueError(f"{layer_name!r} has {channels} filters, not {list(filters)}")
    shape = (len(filters), *holder.input_shape[1:])
    rng = np.random.default_rng(seed)
    picture = tf.Variable(rng.uniform(0.4, 0.6, shape).astype("float32"))
    selection = tf.one_hot(list(filters), channels, dtype=tf.float32)  # (n, channels)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            activation = tf.cast(extractor(picture * pixel_scale, training=False), tf.float32)
            border = 2 if min(activation.shape[1:3]) > 4 else 0  # the book's: no edge effects
            if border:
                activation = activation[:, border:-border, border:-border, :]
            # Each picture's own filter: the pictures do not interact.
            loss = tf.reduce_sum(tf.reduce_mean(activation, axis=(1, 2)) * selection)
        gradient = tape.gradient(loss, picture)
        picture.assign_add(learning_rate * tf.math.l2_normalize(gradient, axis=(1, 2, 3)))
    return np.stack([_displayable(pattern) for pattern in picture.numpy()])


def _displayable(picture: np.ndarray) -> np.ndarray:
    """The book's ``deprocess_image``: standardised, centred on grey, edges cropped."""
    picture = (picture - picture.mean()) / (picture.std() + 1e-5)
    picture = np.clip(picture * 64 + 128, 0, 255).astype("uint8")
    crop = picture.shape[0] // 8
    return picture[crop : picture.shape[0] - crop, crop : picture.shape[1] - crop]


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    layer_name: str | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """``(n, height, width)`` heatmaps in [0, 1] of the predicted class, at the
    resolution of ``layer_name`` (default: the last convolution, in a nested model too).

    Grad-CAM: each channel of the layer's output weighted by the mean gradient of the
    predicted class's score over it, summed, negative parts cut, scaled to a maximum of
    1 (all zero when nothing speaks for the class). The score is the sigmoid's
    probability (a model of one output: ``threshold`` decides the class, the other
    class scores 1 - p) or the top class's probability.
    """
    holder, layer = find_layer(model, layer_name)
    probe = keras.Model(holder.inputs, [layer.output, holder.output])
    inputs = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        activations, outputs = probe(inputs, training=False)
        outputs = tf.cast(outputs, tf.float32)
        if outputs.shape[-1] == 1:
            probability = outputs[:, 0]
            score = tf.where(probability > threshold, probability, 1.0 - probability)
        else:
            score = tf.reduce_max(outputs, axis=-1)
        # The pictures do not interact (inference mode): one gradient serves them all.
        total = tf.reduce_sum(score)
    # Of the layer's own output: a cast copy (mixed precision) is not on the path.
    gradients = tf.cast(tape.gradient(total, activations), tf.float32)
    activations = tf.cast(activations, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # (n, channels)
    heatmaps = tf.nn.relu(tf.einsum("nhwc,nc->nhw", activations, weights)).numpy()
    peaks = heatmaps.max(axis=(1, 2), keepdims=True)
    return np.divide(heatmaps, peaks, out=np.zeros_like(heatmaps), where=peaks > 0)


def overlay(picture: np.ndarray, heatmap: np.ndarray, alpha: float = HEATMAP_ALPHA) -> np.ndarray:
    """``picture`` (uint8, height x width x 3 or 1) with ``heatmap`` in [0, 1] drawn over
    it in the jet colours, resized to the picture (uint8 RGB)."""
    height, width = picture.shape[:2]
    resized = Image.fromarray(np.uint8(np.clip(heatmap, 0, 1) * 255)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    colours = colormaps["jet"](np.asarray(resized) / 255.0)[..., :3] * 255
    rgb = picture if picture.shape[-1] == 3 else np.repeat(picture, 3, axis=-1)
    blended = (1 - alpha) * rgb.astype("float32") + alpha * colours
    return np.clip(blended, 0, 255).astype("uint8")


def upsampled(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``heatmap`` resized to ``size`` (height, width), bilinear, in [0, 1]."""
    image = Image.fromarray(np.float32(heatmap)).resize(
        (size[1], size[0]), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(image), 0, 1)


def heatmap_pngs(
    model: keras.Model, pixels: np.ndarray, input_scale: float, threshold: float
) -> list[str]:
    """Each picture of ``pixels`` (uint8; the model's input is them times ``input_scale``)
    with its Grad-CAM heatmap drawn over it, as a base64 PNG (the served model's answer)."""
    heatmaps = grad_cam(model, pixels.astype("float32") * input_scale, threshold=threshold)
    encoded = []
    for picture, heatmap in zip(pixels, heatmaps, strict=True):
        buffer = io.BytesIO()
        Image.fromarray(overlay(picture, heatmap)).save(buffer, format="PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return encoded
