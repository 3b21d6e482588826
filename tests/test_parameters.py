"""Typed parameters: every section of conf/ parses, and bad values are named with a fix."""

import shlex
import shutil

import pytest
from kedro.framework.cli.utils import _split_params
from pydantic import ValidationError

from convnets.config import costs
from convnets.config.costs import image_input_costs, mnist_costs
from convnets.config.keys import check_environment, check_parameter_keys
from convnets.parameters import (
    Architecture,
    BookEpoch,
    CatsVsDogsData,
    ConvnetAugmented,
    Explain,
    ImageInput,
    InvalidParameters,
    MnistTraining,
    ParameterError,
    Predict,
    Training,
    keeping_invalid_sections,
    parse,
)
from tests.conftest import PROJECT_ROOT, conf_parameters, typed_parameters

CONF = PROJECT_ROOT / "conf"


def kedro_params(text: str) -> dict:
    """``text`` as ``kedro run --params=<text>`` hands it to the session."""
    return _split_params(None, None, text)


SECTIONS = [
    (CatsVsDogsData, "cats_vs_dogs"),
    (Predict, "predict"),
    (Explain, "explain"),
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
    (BookEpoch, "book_epoch"),
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


def test_an_invalid_section_raises_pydantics_validation_error():
    with pytest.raises(ValidationError, match="epochs"):
        Training.model_validate({"epochs": 0})
    with pytest.raises(ValidationError, match="name"):
        Architecture.model_validate({"name": "resnet"})


def test_an_invalid_section_kept_for_the_hook_raises_its_explanation_when_used():
    with keeping_invalid_sections():
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
    assert hint == "--params=catdog.input.image_size=<height>x<width>"
    runtime = kedro_params(hint.removeprefix("--params=").replace("<height>x<width>", "90x90"))
    assert typed_parameters(
        ImageInput, "catdog.input", **runtime["catdog"]["input"]
    ).image_size == (90, 90)


def test_a_missing_subset_is_named():
    value = conf_parameters()["cats_vs_dogs"]
    del value["subsets"]["validation"]
    with pytest.raises(ParameterError, match=r"cats_vs_dogs\.subsets\.validation: Field required"):
        parse(CatsVsDogsData, "cats_vs_dogs", value)


def _fix(message: str) -> str:
    """The command of the message's last ``Fix:`` line."""
    return message.rsplit("\nFix: ", 1)[1].strip()


def _params_of(command: str) -> dict:
    (option,) = [arg for arg in shlex.split(command) if arg.startswith("--params=")]
    return kedro_params(option.removeprefix("--params="))


def _command(params: str) -> str:
    return f"kedro run --pipelines=catdog --params={params}"


def test_unknown_keys_are_all_named_with_the_closest_known_key_and_the_fix_is_accepted():
    given = kedro_params(
        "catdog.trainig.epochs=3,catdgo.input.batch_size=4,predict_dri=/tmp/pics,"
        "catdog.training.epochz=2,model_uri=models:/m/1,cats_vs_dogs.subsets.train.size=5"
    )
    with pytest.raises(ParameterError) as error:
        check_parameter_keys(CONF, "local", given, _command)
    message = str(error.value)
    for line in (
        "catdog.trainig (--params): no key trainig in catdog, so it would be ignored; did you "
        "mean catdog.training? Fix: --params=catdog.training.epochs=3",
        "catdgo (--params): no such parameter, so it would be ignored; did you mean catdog?",
        "predict_dri (--params): no such parameter, so it would be ignored; did you mean "
        "predict_dir? Fix: --params=predict_dir=/tmp/pics",
        "catdog.training.epochz (--params): no key epochz in catdog.training",
    ):
        assert line in message
    # Known keys, the runtime parameters of the catalog among them, are not named.
    named = [line.split()[0] for line in message.splitlines() if line.startswith("  ")]
    assert sorted(named) == ["catdgo", "catdog.trainig", "catdog.training.epochz", "predict_dri"]
    assert "cats_vs_dogs_source, model_uri, predict_dir, predict_model, training_state_root" in (
        message
    )
    fixed = _params_of(_fix(message))
    check_parameter_keys(CONF, "local", fixed, _command)  # accepted
    assert fixed["catdog"]["training"] == {"epochs": 2}  # epochz=2 came after trainig's 3
    assert fixed["catdog"]["input"] == {"batch_size": 4}
    assert fixed["predict_dir"] == "/tmp/pics" and fixed["model_uri"] == "models:/m/1"


def test_a_key_given_at_the_wrong_depth_is_pointed_to_where_it_is():
    given = kedro_params("catdog_fast.training.use_ema=true")
    with pytest.raises(ParameterError) as error:
        check_parameter_keys(CONF, "local", given, _command)
    assert (
        "catdog_fast.training.use_ema (--params): no key use_ema in catdog_fast.training, so "
        "it would be ignored; did you mean catdog_fast.training.optimizer.use_ema? Fix: "
        "--params=catdog_fast.training.optimizer.use_ema=True"
    ) in str(error.value)
    (fix,) = [line for line in str(error.value).splitlines() if "Fix: --params=" in line]
    check_parameter_keys(CONF, "local", kedro_params(fix.split("Fix: --params=")[1]))


def test_an_unknown_key_far_from_any_lists_the_known_ones_and_suggests_no_command():
    with pytest.raises(ParameterError) as error:
        check_parameter_keys(CONF, "local", {"zzz": 1}, _command)
    message = str(error.value)
    assert (
        "the keys there are book_epoch, catdog, catdog_baseline, catdog_fast, catdog_xception, "
        "cats_vs_dogs," in message
    )
    assert "\nFix: " not in message  # no command to copy: the user must choose


def test_an_unknown_key_in_an_environments_parameter_file_names_the_file(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    local = conf / "local" / "parameters.yml"
    local.write_text("catdgo:\n  training: {epochs: 1}\n_shared: 1\ncatdog:\n  title: x\n")
    with pytest.raises(ParameterError, match=rf"catdgo \({local}\): no such parameter.*catdog"):
        check_parameter_keys(conf, "local", None)
    local.write_text("catdog:\n  training: {epochs: 1}\n")
    check_parameter_keys(conf, "local", None)
    check_parameter_keys(conf, "quick", None)


def test_an_unknown_environment_is_named_with_the_environments_and_the_fix_is_one():
    with pytest.raises(ParameterError) as error:
        check_environment(CONF, "quikc", lambda env: f"kedro run --env={env}")
    message = str(error.value)
    assert "There is no environment 'quikc'" in message
    assert "base, local, quick, server" in message
    env = message.split("Fix: kedro run --env=")[1]
    check_environment(CONF, env, lambda name: name)  # accepted


@pytest.mark.parametrize(
    "key, given, expected",
    [
        ("image_size", "180x180", (180, 180)),
        ("image_size", "64 x 96", (64, 96)),
        ("image_size", [90, 90], (90, 90)),
    ],
)
def test_an_image_size_is_given_as_height_x_width(key, given, expected):
    (value,) = (
        kedro_params(f"catdog.input.{key}={given}").values()
        if isinstance(given, str)
        else [{"input": {key: given}}]
    )
    assert typed_parameters(ImageInput, "catdog.input", **value["input"]).image_size == expected


def test_other_lists_have_a_command_line_form_too():
    runtime = kedro_params("catdog_fast.architecture.widths=16x32")
    widths = runtime["catdog_fast"]["architecture"]["widths"]
    assert typed_parameters(
        Architecture, "catdog_fast.architecture", widths=widths
    ).root.widths == (
        16,
        32,
    )
    devices = kedro_params("catdog.training.devices=/gpu:0 /gpu:1")["catdog"]["training"]["devices"]
    assert typed_parameters(Training, "catdog.training", devices=devices).devices == (
        "/gpu:0",
        "/gpu:1",
    )


def test_a_malformed_image_size_is_named_with_the_form_to_use():
    with pytest.raises(ParameterError) as error:
        typed_parameters(ImageInput, "catdog.input", image_size="180by180")
    assert "Fix: --params=catdog.input.image_size=<height>x<width>" in str(error.value)


def test_optimizer_names_are_read_as_keras_reads_them():
    """Keras looks names up in lower case: ``RMSprop`` in a conf file keeps working."""
    training = typed_parameters(Training, "catdog.training", optimizer="RMSprop")
    assert training.optimizer == "rmsprop"


@pytest.mark.parametrize(
    "annotation, key, field, typo, allowed, fixed",
    [
        (Training, "catdog.training", "optimizer", "rmsprp", "'rmsprop'", "rmsprop"),
        (Training, "catdog.training", "optimizer", "adamm", "'adamw'", "adam"),
        (
            Training,
            "catdog.training",
            "loss",
            "binary_crossentropi",
            "'binary_crossentropy'",
            "binary_crossentropy",
        ),
        (
            MnistTraining,
            "mnist.training",
            "loss",
            "binary_crossentropy",
            "'sparse_categorical_crossentropy'",
            "sparse_categorical_crossentropy",
        ),
    ],
)
def test_an_optimizer_or_loss_typo_is_refused_with_the_names_allowed(  # noqa: PLR0917
    annotation, key, field, typo, allowed, fixed
):
    with pytest.raises(ParameterError) as error:
        typed_parameters(annotation, key, **{field: typo})
    (line,) = str(error.value).splitlines()  # one line: not the mapping branch's noise
    assert line.startswith(f"{key}.{field}: Input should be ") and allowed in line
    assert f"(got {typo!r})" in line
    hint = line.split("Fix: ")[1]
    assert hint == f"--params={key}.{field}=<value>"
    runtime = kedro_params(hint.removeprefix("--params=").replace("<value>", fixed))
    section = runtime
    for part in key.split("."):
        section = section[part]
    assert getattr(typed_parameters(annotation, key, **section), field) == fixed


GB = 10**9


def _split(**sizes):
    return typed_parameters(
        CatsVsDogsData,
        "cats_vs_dogs",
        subsets={name: {"size": size} for name, size in sizes.items()},
    )


def _image_input(text: str) -> ImageInput:
    runtime = kedro_params(text)["catdog"]["input"]
    return typed_parameters(ImageInput, "catdog.input", **runtime)


def _apply_fix(problem: str, image_input: ImageInput) -> ImageInput:
    hint = problem.split("Fix: --params=")[1].split(maxsplit=1)[0]
    assert hint.startswith("catdog.input.")
    return _image_input(f"{hint},{','.join(_current(image_input, hint))}")


def _current(image_input: ImageInput, hint: str) -> list[str]:
    """The other fields, as they were, in --params form."""
    size = "x".join(map(str, image_input.image_size))
    items = {"image_size": f"catdog.input.image_size={size}"}
    items["batch_size"] = f"catdog.input.batch_size={image_input.batch_size}"
    return [item for name, item in items.items() if f".{name}=" not in hint]


def test_an_image_size_whose_decoded_cache_the_disk_cannot_hold_says_what_it_costs(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(costs, "free_disk", lambda path: 12 * GB)
    monkeypatch.setattr(costs, "available_memory", lambda: 1000 * GB)
    split = _split(train=1000, validation=500, test=1000)  # the book's
    big = _image_input("catdog.input.image_size=1800x1800")
    (problem,) = image_input_costs("catdog.input", big, split, tmp_path / "decoded")
    assert problem.startswith(
        "catdog.input.image_size: 1800x1800 needs about 49 GB of decoded cache (5000 pictures "
        "of cats_vs_dogs.subsets); the disk of "
    )
    assert "has 12 GB free" in problem
    fixed = _apply_fix(problem, big)
    assert image_input_costs("catdog.input", fixed, split, tmp_path / "decoded") == []
    # A size decoded already costs no more disk.
    (tmp_path / "decoded" / "1800x1800").mkdir(parents=True)
    assert image_input_costs("catdog.input", big, split, tmp_path / "decoded") == []


def test_a_batch_that_the_memory_cannot_hold_says_what_it_costs(tmp_path, monkeypatch):
    monkeypatch.setattr(costs, "free_disk", lambda path: 1000 * GB)
    monkeypatch.setattr(costs, "available_memory", lambda: 8 * GB)
    split = _split(train=1000, validation=500, test=1000)
    huge = _image_input("catdog.input.batch_size=100000000")
    (problem,) = image_input_costs("catdog.input", huge, split, tmp_path)
    # No more than the 2000 training pictures in a batch, whatever batch_size says.
    assert problem.startswith(
        "catdog.input.batch_size: a batch of 2000 pictures of 180x180 needs about 50 GB of "
        "memory to train; 8.0 GB is available"
    )
    fixed = _apply_fix(problem, huge)
    assert fixed.batch_size <= 256
    assert image_input_costs("catdog.input", fixed, split, tmp_path) == []
    # Pictures too large for even one: smaller pictures, at the same batch size.
    wide = _image_input("catdog.input.image_size=6000x6000,catdog.input.batch_size=32")
    (problem,) = image_input_costs("catdog.input", wide, split, tmp_path)
    fixed = _apply_fix(problem, wide)
    assert fixed.batch_size == 32 and fixed.image_size[0] < 6000
    assert image_input_costs("catdog.input", fixed, split, tmp_path) == []
    # The book's recipe fits.
    assert (
        image_input_costs(
            "catdog.input", _image_input("catdog.input.batch_size=32"), split, tmp_path
        )
        == []
    )


def test_an_mnist_batch_that_the_memory_cannot_hold_is_named(monkeypatch):
    monkeypatch.setattr(costs, "available_memory", lambda: 2 * GB)
    training = typed_parameters(MnistTraining, "mnist.training", batch_size=100_000_000)
    (problem,) = mnist_costs("mnist.training", training)
    assert problem.startswith("mnist.training.batch_size: a batch of 60000 pictures of 28x28")
    hint = problem.split("Fix: --params=")[1]
    runtime = kedro_params(hint)["mnist"]["training"]
    assert (
        mnist_costs("mnist.training", typed_parameters(MnistTraining, "mnist.training", **runtime))
        == []
    )


def test_a_new_section_in_base_is_known_to_the_key_checks_without_being_declared(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "base" / "parameters_new.yml").write_text("catdog_new:\n  training: {epochs: 3}\n")
    check_parameter_keys(conf, "quick", {"catdog_new": {"training": {"epochs": 1}}})
    typo = r"catdog_new.trainig \(--params\).*catdog_new.training"
    with pytest.raises(ParameterError, match=typo):
        check_parameter_keys(conf, "quick", {"catdog_new": {"trainig": {"epochs": 1}}})
