"""The shared compute options reach every training section; a section may override them."""

from __future__ import annotations

import pytest

from convnets.config.keys import conf_parameters
from tests.conftest import PROJECT_ROOT

COMPUTE_KEYS = ("precision", "jit_compile", "distribution", "devices")


def _trainings(params: dict) -> dict[str, dict]:
    return {
        name: section["training"]
        for name, section in params.items()
        if isinstance(section, dict) and "training" in section
    }


def test_every_training_section_takes_the_shared_compute_options():
    params = conf_parameters(PROJECT_ROOT / "conf")
    trainings = _trainings(params)
    assert {"catdog", "catdog_baseline", "catdog_fast", "catdog_xception", "mnist"} <= set(
        trainings
    )
    for name, training in trainings.items():
        own = {"precision": "float32"} if name == "catdog_xception" else {}
        assert {key: training[key] for key in COMPUTE_KEYS} == {**params["compute"], **own}, name


def test_compute_on_the_command_line_reaches_every_pipeline_but_their_own_overrides():
    overrides = [
        "compute.jit_compile=true",
        "compute.precision=mixed_bfloat16",
        "catdog_baseline.training.distribution=mirrored",
    ]
    trainings = _trainings(conf_parameters(PROJECT_ROOT / "conf", "quick", overrides))
    assert all(training["jit_compile"] is True for training in trainings.values())
    assert trainings["catdog"]["precision"] == trainings["mnist"]["precision"] == "mixed_bfloat16"
    assert trainings["fashion_mnist"]["precision"] == "mixed_bfloat16"
    assert trainings["catdog_fast"]["precision"] == "mixed_bfloat16"
    assert trainings["catdog_xception"]["precision"] == "float32"  # its own, as in conf/base
    assert trainings["catdog_baseline"]["distribution"] == "mirrored"
    assert trainings["catdog"]["distribution"] == "none"


def _optimizer(**options):
    from convnets.parameters import Optimizer  # noqa: PLC0415

    base = {"learning_rate": 0.01, "weight_decay": 0.0, "schedule": "constant"}
    return Optimizer.model_validate({**base, "warmup_epochs": 0.0, **options})


def test_momentum_nesterov_and_weight_averaging_reach_the_keras_optimizer():
    from convnets.ml.training.compile import build_optimizer  # noqa: PLC0415

    sgd = build_optimizer(_optimizer(name="sgd", momentum=0.9, nesterov=True), 10, 2)
    assert (sgd.momentum, sgd.nesterov, sgd.use_ema) == (0.9, True, False)
    averaged = build_optimizer(_optimizer(name="adamw", use_ema=True), 10, 2)
    assert averaged.use_ema is True
    plain = build_optimizer(_optimizer(name="rmsprop"), 10, 2)
    assert (plain.momentum, plain.use_ema) == (0.0, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "adamw", "momentum": 0.9}, "momentum is an option of sgd and rmsprop"),
        ({"name": "sgd", "nesterov": True}, "nesterov needs name: sgd and a momentum"),
        ({"name": "rmsprop", "momentum": 0.9, "nesterov": True}, "nesterov needs name: sgd"),
    ],
)
def test_an_optimizer_option_the_optimizer_does_not_have_is_refused(options, message):
    from pydantic import ValidationError  # noqa: PLC0415

    with pytest.raises(ValidationError, match=message):
        _optimizer(**options)


def test_use_ema_is_refused_with_a_training_metric_monitor():
    from convnets.parameters import Training  # noqa: PLC0415
    from tests.conftest import typed_parameters  # noqa: PLC0415

    averaged = {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.0}
    averaged |= {"schedule": "constant", "warmup_epochs": 0.0, "use_ema": True}
    with pytest.raises(ValueError, match="use_ema needs a validation monitor"):
        typed_parameters(
            Training, "catdog_fast.training", optimizer=averaged, checkpoint_monitor="accuracy"
        )
