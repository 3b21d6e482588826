"""The resume fingerprint: what a resume state was trained with, so another is not resumed.

Which training fields enter it is declared beside each field in ``convnets.parameters``
(``Fingerprinted`` or ``NotFingerprinted``): a field without either is an error here,
so a new option cannot silently change (and discard) every existing state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import keras
from pydantic.fields import FieldInfo

from convnets.ml.hardware import resolve_precision
from convnets.parameters import Fingerprinted, NotFingerprinted, Training

STATE_FORMAT = 2  # the layout of the resume state; states of another format are not resumed


def _architecture(layer: keras.layers.Layer) -> list[Any]:
    """Layer classes and configurations in order, without the names Keras generates.

    Auto names (``conv2d_3``) depend on how many layers the process built before, so
    ``model.to_json()`` would change with what else ran first.
    """
    children = getattr(layer, "layers", None)
    if children is not None:
        return [type(layer).__name__, [_architecture(child) for child in children]]
    config = {key: value for key, value in layer.get_config().items() if key != "name"}
    return [type(layer).__name__, config]


def fingerprint_marker(name: str, field: FieldInfo | None) -> Fingerprinted | NotFingerprinted:
    """What the field ``name`` declares of the fingerprint; TypeError when it declares none."""
    kinds = Fingerprinted | NotFingerprinted
    markers = [item for item in getattr(field, "metadata", ()) if isinstance(item, kinds)]
    if len(markers) != 1:
        raise TypeError(
            f"The training field {name!r} must be annotated with exactly one of "
            "Fingerprinted() or NotFingerprinted(why) (convnets.parameters): whether it "
            "changes what the training computes decides which resume states stay valid"
        )
    return markers[0]


def fingerprinted_options(training: Training) -> dict[str, Any]:
    """The training fields declared ``Fingerprinted``, but those at their ``left_out_at``."""
    # What was computed: "auto" as the policy it resolved to on this machine.
    dumped = training.model_dump()
    if "precision" in dumped:
        dumped["precision"] = resolve_precision(dumped["precision"])[0]
    # Something else that dumps as a training section is read as one.
    fields = getattr(type(training), "model_fields", Training.model_fields)
    kept = {}
    for name, value in dumped.items():
        marker = fingerprint_marker(name, fields.get(name))
        if isinstance(marker, Fingerprinted) and value not in marker.left_out_at:
            kept[name] = value
    return kept


def training_fingerprint(
    model: keras.Model, training: Training, data: dict[str, Any] | None = None
) -> str:
    """sha256 of the model's architecture, the training parameters and ``data``.

    ``data`` describes what is trained on (input shape, batches an epoch), so a state
    left by a run on other data or batches is not resumed. Options at their usual
    values stay out, so adding an option keeps the states written since this format.
    """
    config = json.dumps(
        {
            "format": STATE_FORMAT,
            "model": _architecture(model),
            "training": fingerprinted_options(training),
            "data": data or {},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(config.encode()).hexdigest()


def describe_data(x: Any, batch_size: int | None, validation_split: float) -> dict[str, Any]:
    """What the fingerprint records of the training data: shapes and batches an epoch."""
    if batch_size is None:  # a batched tf.data.Dataset
        return {"spec": str(x.element_spec), "batches": int(x.cardinality())}
    return {"shape": list(x.shape), "batch_size": batch_size, "validation_split": validation_split}
