"""The project's config loader: the environments' training overrides reach every
training pipeline of the registry, and ``--params`` still win over them."""

import shutil

import pytest

from convnets.config.keys import conf_parameters
from convnets.config.loader import ProjectConfigLoader, with_training_overrides
from convnets.parameters import ParameterError
from convnets.pipeline_registry import training_packages
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
PACKAGES = {"a": "image_classifier", "b": "image_classifier", "m": "mnist"}


def test_the_overrides_of_a_package_reach_each_of_its_pipelines_and_only_their_training():
    parameters = {
        "a": {"training": {"epochs": 100, "seed": 0}, "input": {"batch_size": 32}},
        "b": {"training": {"epochs": 30, "seed": 0}},
        "m": {"training": {"epochs": 5}},
        "cats_vs_dogs": {"epochs": 7},
    }
    overrides = {"image_classifier": {"epochs": 2}, "mnist": {"epochs": 1}}
    changed = with_training_overrides(parameters, overrides, PACKAGES)
    assert changed == {
        "a": {"training": {"epochs": 2, "seed": 0}, "input": {"batch_size": 32}},
        "b": {"training": {"epochs": 2, "seed": 0}},
        "m": {"training": {"epochs": 1}},
        "cats_vs_dogs": {"epochs": 7},
    }
    assert parameters["a"]["training"]["epochs"] == 100  # not changed in place


def test_a_pipeline_without_a_training_section_is_left_for_the_checks_to_name():
    changed = with_training_overrides({"a": {"title": "x"}}, {"mnist": {"epochs": 1}}, PACKAGES)
    assert changed == {"a": {"title": "x"}}


def test_an_override_for_a_package_that_trains_nothing_is_refused():
    with pytest.raises(ParameterError, match=r"no training pipeline trains with mnsit.*mnist"):
        with_training_overrides({}, {"mnsit": {"epochs": 1}}, PACKAGES)


def test_a_typo_among_the_overrides_is_refused_naming_the_file_and_the_options():
    parameters = {"a": {"training": {"epochs": 100, "seed": 0}}, "m": {"training": {"epochs": 5}}}
    with pytest.raises(ParameterError) as refused:
        with_training_overrides(parameters, {"image_classifier": {"epochz": 2}}, PACKAGES, "f.yml")
    assert str(refused.value) == (
        "f.yml: image_classifier.epochz is not a training option of the pipelines that "
        "train with image_classifier; edit that file: the options are epochs, seed"
    )


@pytest.mark.parametrize("entry", [None, "epochs"])
def test_an_override_that_is_not_a_mapping_is_refused(entry):
    with pytest.raises(ParameterError, match="f.yml: mnist must map training options"):
        with_training_overrides({"m": {"training": {}}}, {"mnist": entry}, PACKAGES, "f.yml")


def test_quick_gives_each_package_its_epochs_and_params_still_win():
    quick = conf_parameters(CONF, "quick", ["catdog.training.epochs=3"])
    epochs = {name: quick[name]["training"]["epochs"] for name in training_packages()}
    assert epochs["catdog"] == 3  # --params
    for name, package in training_packages().items():
        if name != "catdog":
            assert epochs[name] == {"image_classifier": 2, "mnist": 1}[package], name


def test_an_environment_without_overrides_reads_its_parameters_as_kedro_does(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local" / "parameters.yml").write_text("mnist:\n  training: {epochs: 4}\n")
    loader = ProjectConfigLoader(
        str(conf), env="local", base_env="base", merge_strategy={"parameters": "soft"}
    )
    parameters = loader["parameters"]
    assert parameters["mnist"]["training"]["epochs"] == 4
    assert parameters["fashion_mnist"]["training"]["epochs"] == 5  # base's
    assert parameters["report"]["training_pipelines"] == list(training_packages())
