"""The figures of section 9.4: activation grids, filter patterns, heatmap galleries."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets.ml.explain.maps import overlay


def _shown_channel(channel: np.ndarray) -> np.ndarray:
    """The book's display of one channel: standardised, centred on grey, clipped."""
    if channel.std() > 0:
        channel = (channel - channel.mean()) / channel.std() * 64 + 128
    else:
        channel = np.zeros_like(channel)  # a dead channel: black, as in the book
    return np.clip(channel, 0, 255).astype("uint8")


def plot_activations(
    picture: np.ndarray, activations: dict[str, np.ndarray], channels: int, title: str
) -> Figure:
    """The picture, then one row per layer: its first ``channels`` channels (the book's
    figures 9.16 and 9.17), each standardised on its own."""
    columns = max(1, min(channels, max(a.shape[-1] for a in activations.values())))
    rows = len(activations) + 1
    figure, axes = plt.subplots(
        rows, columns, figsize=(1.3 * columns + 1.5, 1.45 * rows), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    axes[0, 0].imshow(picture.squeeze(), cmap="gray" if picture.shape[-1] == 1 else None)
    axes[0, 0].set_title("input", fontsize=8)
    for row, (name, activation) in enumerate(activations.items(), start=1):
        shown = min(columns, activation.shape[-1])
        for column in range(shown):
            axes[row, column].imshow(_shown_channel(activation[..., column]), cmap="viridis")
        axes[row, 0].set_title(
            f"{name} {activation.shape[0]}x{activation.shape[1]}, "
            f"{shown} of {activation.shape[-1]} channels",
            fontsize=8,
            loc="left",
        )
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_filter_patterns(patterns: dict[str, tuple[list[int], np.ndarray]], title: str) -> Figure:
    """One row per layer: the input each filter responds to most (the book's figure 9.19)."""
    columns = max(len(filters) for filters, _ in patterns.values())
    figure, axes = plt.subplots(
        len(patterns), columns, figsize=(2 * columns, 2.2 * len(patterns)), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for row, (name, (filters, pictures)) in enumerate(patterns.items()):
        for column, (index, picture) in enumerate(zip(filters, pictures, strict=True)):
            grey = picture.shape[-1] == 1
            axes[row, column].imshow(picture.squeeze(), cmap="gray" if grey else None)
            axes[row, column].set_title(f"{name}\nfilter {index}", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


@dataclass(frozen=True)
class Explained:
    """One picture of a heatmap gallery: the picture, its heatmap, what to write above."""

    picture: np.ndarray  # uint8, the model's input
    heatmap: np.ndarray  # [0, 1], the layer's resolution
    caption: str
    wrong: bool


def plot_heatmaps(explained: list[Explained], title: str, columns: int = 4) -> Figure:
    """Each picture beside its Grad-CAM heatmap drawn over it; a wrong answer in red."""
    columns = max(1, min(columns, len(explained)))
    rows = max(1, math.ceil(len(explained) / columns))
    figure, axes = plt.subplots(
        rows, 2 * columns, figsize=(4.4 * columns, 2.6 * rows), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for position, item in enumerate(explained):
        row, column = divmod(position, columns)
        picture = item.picture if item.picture.shape[-1] == 3 else item.picture[..., 0]
        axes[row, 2 * column].imshow(picture, cmap=None if picture.ndim == 3 else "gray")
        axes[row, 2 * column].set_title(
            item.caption, fontsize=8, color="red" if item.wrong else "black", loc="left"
        )
        axes[row, 2 * column + 1].imshow(overlay(item.picture, item.heatmap))
    if not explained:
        axes[0, 0].text(0.5, 0.5, "no picture to show", ha="center", va="center")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
