"""Interpreting what convnets learn (section 9.4 of the book), for any trained model.

- ``model_layers``: the convolutions of a model, nested ones too, and the refusals;
- ``maps``: intermediate activations, filter patterns, Grad-CAM, overlays;
- ``figures``: the grids and galleries drawn from them;
- ``calibration``: ROC, precision-recall, the reliability diagram.
"""

from convnets.ml.explain.calibration import (
    calibration_table,
    curve_metrics,
    expected_calibration_error,
    plot_reliability,
    plot_roc_and_precision_recall,
)
from convnets.ml.explain.figures import (
    Explained,
    plot_activations,
    plot_filter_patterns,
    plot_heatmaps,
)
from convnets.ml.explain.maps import (
    filter_patterns,
    grad_cam,
    heatmap_pngs,
    intermediate_activations,
    overlay,
    upsampled,
)
from convnets.ml.explain.model_layers import (
    NotExplainable,
    convolution_names,
    feature_layers,
    find_layer,
    layer_names,
    spread_convolutions,
)

__all__ = [
    "Explained",
    "NotExplainable",
    "calibration_table",
    "convolution_names",
    "curve_metrics",
    "expected_calibration_error",
    "feature_layers",
    "filter_patterns",
    "find_layer",
    "grad_cam",
    "heatmap_pngs",
    "intermediate_activations",
    "layer_names",
    "overlay",
    "plot_activations",
    "plot_filter_patterns",
    "plot_heatmaps",
    "plot_reliability",
    "plot_roc_and_precision_recall",
    "spread_convolutions",
    "upsampled",
]
