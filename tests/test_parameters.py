"""Typed parameters: every section of conf/ parses, and bad values are named with a fix."""

import pytest
from omegaconf import OmegaConf

from convnets.parameters import (
    Architecture,
    CatsVsDogsData,
    ConvnetAugmented,
    ImageInput,
    InvalidParameters,
    MnistTraining,
    ParameterError,
    Predict,
    Training,
    TrainingCost,
    parse,
)
from tests.conftest import conf_parameters, typed_parameters

SECTIONS = [
    (CatsVsDogsData, "cats_vs_dogs"),
    (Predict, "predict"),
    *[
        (annotation, f"{model}.{section}")
        for model in ("catdog", "catdog_baseline", "catdog_fast")
        for annotation, section in (
            (ImageInput, "input"),
            (Architecture, "architecture"),
            (Training, "training"),
        )
    ],
    *[(MnistTraining, f"{model}.training") for model in ("mnist", "fashion_mnist")],
    (TrainingCost, "catdog_fast.cost"),
]


@pytest.mark.parametrize("annotation, key", SECTIONS, ids=[key for _, key in SECTIONS])
@pytest.mark.parametrize("env", [None, "quick"])
def test_every_section_of_conf_parses(annotation, key, env):
    value = conf_parameters(env)
    for part in key.split("."):
        value = value[part]
    parsed = parse(annotation, key, value)
    assert isinstance(parsed, annotation)
    with pytest.raises(Exception, match="frozen"):
        parsed.__setattr__(next(iter(type(parsed).model_fields)), None)


def test_the_book_recipes_parse_to_their_architectures():
    catdog = typed_parameters(Architecture, "catdog.architecture")
    assert isinstance(catdog.root, ConvnetAugmented)
    assert typed_parameters(Architecture, "catdog_baseline.architecture").root.name == "convnet"


def test_an_invalid_section_raises_its_explanation_when_used():
    invalid = Training.model_validate({"epochs": 0})
    assert isinstance(invalid, InvalidParameters)
    with pytest.raises(ParameterError, match="epochs: Input should be greater than 0"):
        _ = invalid.epochs


@pytest.mark.parametrize(
    "annotation, key, changes, expected",
    [
        (Training, "catdog.training", {"epochs": 0}, "catdog.training.epochs: Input should be"),
        (Training, "catdog.training", {"epochs": True}, "catdog.training.epochs"),
        (ImageInput, "catdog.input", {"batch_size": -1}, "catdog.input.batch_size"),
        (ImageInput, "catdog.input", {"image_size": [80]}, "catdog.input.image_size"),
        (
            Architecture,
            "catdog.architecture",
            {"name": "resnet"},
            "catdog.architecture.name: Input tag 'resnet'.*'convnet', 'convnet_augmented'",
        ),
        (Architecture, "catdog.architecture", {"dropout": 1.5}, "catdog.architecture.dropout"),
        (
            Training,
            "catdog.training",
            {"precision": "float8"},
            "catdog.training.precision: Input should be 'auto', 'float32'",
        ),
        (Training, "catdog.training", {"epoch": 3}, "catdog.training.epoch: Extra inputs"),
        (MnistTraining, "mnist.training", {"batch_size": -1}, "mnist.training.batch_size"),
        (
            Training,
            "catdog_fast.training",
            {"epochs": 30, "validation_freq": 4},
            "catdog_fast.training.validation_freq: epochs \\(30\\) must be a multiple",
        ),
        (
            Training,
            "catdog_fast.training",
            {"optimizer": {"schedule": "constant"}},
            "catdog_fast.training.optimizer.warmup_epochs: a warm-up needs schedule: cosine",
        ),
        (
            Architecture,
            "catdog_fast.architecture",
            {"block": "dense"},
            "catdog_fast.architecture.block: Input should be 'plain' or 'residual'",
        ),
        (
            Architecture,
            "catdog_fast.architecture",
            {"widths": []},
            "catdog_fast.architecture.widths",
        ),
        (MnistTraining, "mnist.training", {"epochs": 1.5}, "mnist.training.epochs"),
        (
            Training,
            "catdog.training",
            {"distribution": "multiworker"},
            "catdog.training.distribution: Input should be 'none' or 'mirrored'",
        ),
        (
            CatsVsDogsData,
            "cats_vs_dogs",
            {"subsets": {"train": {"size": "ten"}}},
            "cats_vs_dogs.subsets.train.size",
        ),
        (
            CatsVsDogsData,
            "cats_vs_dogs",
            {"subsets": {"train": {"start": -1}}},
            "cats_vs_dogs.subsets.train.start",
        ),
    ],
)
def test_a_bad_value_is_named_by_its_full_key(annotation, key, changes, expected):
    with pytest.raises(ParameterError, match=expected):
        typed_parameters(annotation, key, **changes)


def test_a_missing_key_is_named_and_no_default_stands_in():
    value = conf_parameters()["catdog"]["training"]
    del value["seed"]
    with pytest.raises(ParameterError, match=r"catdog\.training\.seed: Field required"):
        parse(Training, "catdog.training", value)


def test_the_suggested_params_string_sets_the_key_that_failed():
    with pytest.raises(ParameterError) as error:
        typed_parameters(ImageInput, "catdog.input", image_size=[0, 180])
    hint = str(error.value).split("Fix: ")[1].split()[0]
    assert hint == "--params=catdog.input.image_size=<value>"
    # What kedro run does with the string (kedro.framework.cli.utils._split_params).
    runtime = OmegaConf.to_container(
        OmegaConf.from_dotlist([hint.removeprefix("--params=").replace("<value>", "[90,90]")])
    )
    assert typed_parameters(
        ImageInput, "catdog.input", **runtime["catdog"]["input"]
    ).image_size == (
        90,
        90,
    )


def test_a_missing_subset_is_named():
    value = conf_parameters()["cats_vs_dogs"]
    del value["subsets"]["validation"]
    with pytest.raises(ParameterError, match=r"cats_vs_dogs\.subsets\.validation: Field required"):
        parse(CatsVsDogsData, "cats_vs_dogs", value)
