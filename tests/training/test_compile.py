"""The shared compute options reach every training section; a section may override them."""

from __future__ import annotations

from convnets.parameters import conf_parameters
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
        own = {"precision": "float32"} if name in ("catdog_fast", "catdog_xception") else {}
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
    assert trainings["catdog_fast"]["precision"] == "float32"  # its own, as in conf/base
    assert trainings["catdog_baseline"]["distribution"] == "mirrored"
    assert trainings["catdog"]["distribution"] == "none"
