"""Which training fields enter the resume fingerprint: declared beside each field."""

from __future__ import annotations

from typing import Annotated

import pytest

from convnets.ml.training.fingerprint import fingerprint_marker, fingerprinted_options
from convnets.parameters import Fingerprinted, MnistTraining, NotFingerprinted, Training
from tests.conftest import typed_parameters

TRAINING_MODELS = [Training, *Training.__subclasses__()]


@pytest.mark.parametrize("model", TRAINING_MODELS, ids=lambda model: model.__name__)
def test_every_training_field_says_whether_it_is_fingerprinted(model):
    for name, field in model.model_fields.items():
        marker = fingerprint_marker(name, field)
        assert isinstance(marker, Fingerprinted | NotFingerprinted)


def test_the_classification_is_the_one_resume_states_were_written_with():
    """Changing it sets every existing resume state aside as another configuration."""
    markers = {
        name: fingerprint_marker(name, field) for name, field in MnistTraining.model_fields.items()
    }
    left_out = {name for name, marker in markers.items() if isinstance(marker, NotFingerprinted)}
    assert left_out == {"distribution", "devices"}
    usual = {
        name: marker.left_out_at
        for name, marker in markers.items()
        if isinstance(marker, Fingerprinted) and marker.left_out_at
    }
    assert usual == {"precision": ("float32",), "jit_compile": (False,), "validation_freq": (1,)}


def test_an_unclassified_field_is_refused_not_silently_fingerprinted():
    class WithNewOption(Training):
        new_option: Annotated[int, "no marker"] = 3

    training = WithNewOption.model_validate(
        typed_parameters(Training, "catdog.training").model_dump()
    )
    with pytest.raises(TypeError, match="'new_option' must be annotated"):
        fingerprinted_options(training)


def test_options_left_out_at_their_usual_value_and_the_spread_never():
    training = typed_parameters(
        Training, "catdog.training", precision="float32", distribution="mirrored"
    )
    options = fingerprinted_options(training)
    assert "precision" not in options and "jit_compile" not in options
    assert "distribution" not in options and "devices" not in options
    assert options["epochs"] == training.epochs


def test_optimizer_options_added_later_leave_existing_fingerprints_alone():
    """momentum, nesterov and use_ema at their defaults dump as before them."""
    before = {"name": "adamw", "learning_rate": 0.002, "weight_decay": 0.0001}
    before |= {"schedule": "cosine", "warmup_epochs": 1.0}
    plain = typed_parameters(Training, "catdog_fast.training", optimizer=before)
    assert fingerprinted_options(plain)["optimizer"] == before
    averaged = typed_parameters(
        Training, "catdog_fast.training", optimizer={**before, "use_ema": True}
    )
    assert fingerprinted_options(averaged)["optimizer"] == {**before, "use_ema": True}
