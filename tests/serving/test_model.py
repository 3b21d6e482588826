"""The servable model: bytes in, one answer per row, the same input as training and predict."""

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import convnets
from convnets.parameters import CatsVsDogsData, ImageInput
from convnets.serving.model import (
    ERROR_CODES,
    ImageClassifier,
    RequestTooLarge,
    ServingConfig,
    classify,
    error_text,
)
from tests.conftest import jpeg_bytes, png_header, typed_parameters, wait_for_ping

DATA = typed_parameters(CatsVsDogsData, "cats_vs_dogs")
CONFIG = ServingConfig(
    class_names=["cat", "dog"],
    image_size=[32, 32],
    channels=3,
    input_scale=1.0,
    max_pixels=40_000_000,
    decision_threshold=0.5,
)


def solid_jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), value, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


class RecordingModel:
    """Stands in for a Keras model: remembers its input, answers 0.9 for every picture."""

    input_shape = (None, 32, 32, 3)

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def predict_on_batch(self, batch):
        self.batches.append(np.array(batch))
        return np.full((len(batch), 1), 0.9, dtype="float32")


def test_bad_rows_get_errors_and_the_other_rows_answers():
    pictures = [
        solid_jpeg(250),
        b"<html>not an image</html>",
        b"",
        jpeg_bytes(1, size=64)[:200],  # truncated
        png_header(12000, 12000),
        solid_jpeg(5),
    ]
    model = RecordingModel()
    answer = classify(model, CONFIG, pictures)
    assert list(answer.columns) == ["label", "probability_dog", "error", "error_code"]
    assert list(answer.label) == ["dog", "", "", "", "", "dog"]
    assert answer.probability_dog[[0, 5]].tolist() == pytest.approx([0.9, 0.9])
    assert answer.probability_dog[1:5].isna().all()
    assert answer.error[1] == "UnidentifiedImageError: cannot identify image file"
    assert answer.error[2] == "EmptyPicture: empty image"
    assert answer.error[3] != ""
    assert answer.error[4].startswith("ImageTooLarge: 144,000,000 pixels declared")
    assert [len(batch) for batch in model.batches] == [2]  # the good rows, decoded once
    assert list(answer.error_code) == [
        "",
        "not_an_image",
        "empty",
        "corrupt_image",
        "too_many_pixels",
        "",
    ]
    assert set(answer.error_code) - {""} <= set(ERROR_CODES)


def _strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as JavaScript's JSON.parse does."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_a_failed_row_serialises_to_strict_json_with_a_null_probability():
    """What MLflow's scoring server writes for the answer of a request."""
    from mlflow.pyfunc.scoring_server import predictions_to_json  # noqa: PLC0415

    served = ImageClassifier()
    served.keras_model, served.config = RecordingModel(), CONFIG
    answer = served.predict(None, pd.DataFrame({"image": [solid_jpeg(250), b"not an image"]}))
    out = io.StringIO()
    predictions_to_json(answer, out)
    rows = _strict_json(out.getvalue())["predictions"]
    assert rows[0]["probability_dog"] == pytest.approx(0.9) and rows[0]["error_code"] == ""
    assert rows[1]["probability_dog"] is None and rows[1]["label"] == ""
    assert rows[1]["error_code"] == "not_an_image"
    assert CONFIG.signature().outputs.input_names() == list(answer.columns)
    assert not CONFIG.signature().outputs.inputs[1].required  # null on an error row


@pytest.mark.parametrize(
    "error, text",
    [
        (
            OSError("cannot identify image file <_io.BytesIO object at 0x7f3a2c1b9e40>"),
            "OSError: cannot identify image file",
        ),
        (
            ValueError("bad <PIL.PngImagePlugin.PngImageFile image mode=RGB size=9x9 at 0x7F1C>!"),
            "ValueError: bad!",
        ),
        (ValueError("buffer at 0x55d0c0ffee00 freed"), "ValueError: buffer freed"),
        (
            ValueError(
                "{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/"
                "device:CPU:0}} Unknown image file format. [Op:DecodeImage] name: "
            ),
            "ValueError: Unknown image file format.",
        ),
    ],
)
def test_error_texts_carry_no_object_addresses(error, text):
    assert error_text(error) == text


def test_a_tiff_is_an_unsupported_format_row():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buffer, format="TIFF")
    answer = classify(RecordingModel(), CONFIG, [buffer.getvalue()])
    assert answer.error_code[0] == "unsupported_format"
    assert "0x" not in answer.error[0] and "function_node" not in answer.error[0]


@pytest.mark.parametrize(
    "pictures, words",
    [
        ([b"x"] * 4, ["4 pictures", "the 3 allowed", "max_pictures_per_request", "at most 3"]),
        ([b"x" * 600, b"x" * 500], ["1,100 bytes", "the 1,000 allowed", "max_request_bytes"]),
    ],
)
def test_a_request_over_the_limits_is_refused_before_decoding(pictures, words):
    from mlflow.exceptions import MlflowException  # noqa: PLC0415
    from mlflow.pyfunc.scoring_server import invocations  # noqa: PLC0415

    config = ServingConfig(
        **{**CONFIG.as_model_config(), "max_pictures_per_request": 3, "max_request_bytes": 1000}
    )
    served = ImageClassifier()
    served.keras_model, served.config = RecordingModel(), config
    with pytest.raises(RequestTooLarge) as refused:
        served.predict(None, pd.DataFrame({"image": pictures}))
    assert served.keras_model.batches == []
    for word in words:
        assert word in refused.value.message

    class Served:  # what the scoring server calls
        metadata = None

        def predict(self, data):
            return served.predict(None, data)

    body = json.dumps(_rows(*pictures))
    with pytest.raises(MlflowException) as raised:
        invocations(body, "application/json", Served(), config.signature().inputs)
    assert raised.value.get_http_status_code() == 400
    # Not prefixed by the server with the request's DataFrame: the limit, and what to do.
    assert raised.value.message == refused.value.message


def test_digits_get_the_most_probable_class_and_scaled_grayscale_input():
    config = ServingConfig(
        class_names=[str(d) for d in range(10)],
        image_size=[28, 28],
        channels=1,
        input_scale=1 / 255,
        max_pixels=1_000_000,
        decision_threshold=None,
    )
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 255, dtype=np.uint8)).save(buffer, format="PNG")
    answer = classify(model, config, [buffer.getvalue()])
    expected = model.predict(np.ones((1, 28, 28, 1), dtype="float32"), verbose=0)[0]
    assert answer.label[0] == str(int(np.argmax(expected)))
    assert answer.probability[0] == pytest.approx(float(expected.max()), abs=1e-6)


def test_one_jpeg_reaches_the_model_as_the_same_bytes_on_every_path(tmp_path):
    """Training's decoded cache, the predict node and the served (pyfunc) model."""
    from convnets.datasets import ImageArrayDataset, ImageFolderDataset  # noqa: PLC0415
    from convnets.parameters import Predict  # noqa: PLC0415
    from convnets.pipelines.image_classifier.nodes import decode_images  # noqa: PLC0415
    from convnets.pipelines.predict.nodes import predict_images  # noqa: PLC0415

    picture = jpeg_bytes(7, size=97)
    files = {
        f"{subset}/{label}/{label}.{index}.jpg": picture
        for subset in ("train", "validation", "test")
        for index, label in enumerate(("cat", "dog"))
    }
    ImageFolderDataset(path=str(tmp_path / "split")).save(files)
    image_input = typed_parameters(ImageInput, "catdog.input", image_size=[32, 32])
    cache = ImageArrayDataset(path=str(tmp_path / "decoded"))
    cache.save(
        decode_images(ImageFolderDataset(path=str(tmp_path / "split")).load(), DATA, image_input)
    )
    trained_on = cache.load().subsets((32, 32))["test"].read([0])[0]

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    keras_model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    keras_file = tmp_path / "model.keras"
    keras_model.save(keras_file)
    saved = tmp_path / "served"
    mlflow.pyfunc.save_model(
        saved,
        python_model=str(Path(convnets.__file__).parent / "serving" / "model_code.py"),
        artifacts={"keras_model": str(keras_file)},
        model_config=CONFIG.as_model_config(),
        signature=CONFIG.signature(),
        input_example=pd.DataFrame({"image": [picture]}),
    )
    served = mlflow.pyfunc.load_model(str(saved))
    # predict calls the servable model as a client does: the same wrapper, the same bytes.
    predicting = RecordingModel()
    served.unwrap_python_model().keras_model = predicting
    predict = typed_parameters(Predict, "predict", grid_images=1)
    predict_images({"cat.1.jpg": lambda: picture}, served, predict)
    serving = RecordingModel()
    served.unwrap_python_model().keras_model = serving
    served.predict(pd.DataFrame({"image": [picture]}))

    assert trained_on.dtype == predicting.batches[0].dtype == serving.batches[0].dtype == np.uint8
    assert predicting.batches[0][0].tobytes() == trained_on.tobytes()
    assert serving.batches[0][0].tobytes() == trained_on.tobytes()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    """Status and answer, the answer parsed as strict JSON (NaN or Infinity fail)."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _strict_json(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, _strict_json(error.read().decode() or "{}")


def _post_from_node(url: str, body: dict) -> tuple[int, dict]:
    """The same request from Node.js, whose ``JSON.parse`` refuses NaN."""
    script = """
const [url, body] = process.argv.slice(1);
fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body})
  .then(async (response) => {
    const answer = JSON.parse(await response.text());
    process.stdout.write(JSON.stringify({status: response.status, answer}));
  })
  .catch((error) => { console.error(String(error)); process.exit(3); });
"""
    done = subprocess.run(
        ["node", "-e", script, url, json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result["status"], result["answer"]


def _rows(*pictures: bytes | str) -> dict:
    encoded = [p if isinstance(p, str) else base64.b64encode(p).decode() for p in pictures]
    return {"dataframe_split": {"columns": ["image"], "data": [[item] for item in encoded]}}


@pytest.fixture
def model_server(kedro_project):
    """``mlflow models serve`` of the champion of a tiny catdog_baseline run, on 127.0.0.1."""
    from tests.pipelines.test_end_to_end import TINY_CATDOG, _run  # noqa: PLC0415

    _run(
        kedro_project,
        "catdog_baseline",
        {
            **TINY_CATDOG,
            "catdog_baseline.training.epochs": 1,
            # Limits small enough to reach with tiny pictures.
            "serving.max_pictures_per_request": 8,
            "serving.max_request_bytes": 100_000,
        },
    )
    port = _free_port()
    uri = "models:/convnets-catdog-baseline@champion"
    log = (kedro_project / "model_server.log").open("w")  # a file: a pipe could fill up
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{kedro_project / 'mlflow.db'}",
            # The server execs uvicorn by name: this environment's scripts come first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers stop with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_ping(base, server)
        except RuntimeError as error:
            output = (kedro_project / "model_server.log").read_text()[-2000:]
            raise RuntimeError(f"model server did not start ({error}): {output}") from None
        yield kedro_project, uri, base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.processes
@pytest.mark.slow
def test_the_served_champion_answers_as_predict_does(model_server):
    from tests.pipelines.test_end_to_end import _run  # noqa: PLC0415

    project, uri, base = model_server
    cat, dog = jpeg_bytes(3001, size=60), jpeg_bytes(3002, size=60)
    pictures = project / "to_classify"
    pictures.mkdir()
    (pictures / "cat.9001.jpg").write_bytes(cat)
    (pictures / "dog.9002.jpg").write_bytes(dog)
    _run(project, "predict", {"predict_dir": str(pictures), "model_uri": uri})
    table = pd.read_csv(project / "data" / "07_model_output" / "predictions.csv")

    status, answer = _post(f"{base}/invocations", _rows(cat, dog))
    assert status == 200
    served = pd.DataFrame(answer["predictions"])
    assert list(served.label) == list(table.label)
    assert np.allclose(served.probability_dog, table.probability_dog, atol=1e-5)

    # Bad pictures in a batch: an error on their rows, answers on the others.
    status, answer = _post(
        f"{base}/invocations",
        _rows(b"not an image", b"", jpeg_bytes(5, size=64)[:200], png_header(12000, 12000), dog),
    )
    assert status == 200
    rows = answer["predictions"]
    assert [bool(row["error"]) for row in rows] == [True, True, True, True, False]
    assert [row["error_code"] for row in rows] == [
        "not_an_image",
        "empty",
        "corrupt_image",
        "too_many_pixels",
        "",
    ]
    assert [row["probability_dog"] for row in rows[:4]] == [None] * 4  # null, not NaN
    assert not any("0x" in row["error"] for row in rows)
    assert rows[4]["label"] == served.label[1]
    if shutil.which("node"):
        status, from_node = _post_from_node(f"{base}/invocations", _rows(b"not an image", dog))
        assert status == 200
        assert [row["probability_dog"] is None for row in from_node["predictions"]] == [
            True,
            False,
        ]
    # Over a limit of the run's serving parameters: one 400 that says the limit and how
    # to split, and the server keeps serving.
    status, answer = _post(f"{base}/invocations", _rows(*[cat] * 9))
    assert status == 400
    assert answer["message"] == (
        "9 pictures in one request, more than the 8 allowed "
        "(serving.max_pictures_per_request): send them in requests of at most 8 rows"
    )
    status, answer = _post(f"{base}/invocations", _rows(cat, os.urandom(120_000)))
    assert status == 400
    assert answer["message"].startswith(f"{len(cat) + 120_000:,} bytes of pictures")
    assert "serving.max_request_bytes" in answer["message"]
    assert _post(f"{base}/invocations", _rows(*[cat] * 8))[0] == 200
    # A malformed request is the client's error (4xx), and the server keeps serving.
    assert 400 <= _post(f"{base}/invocations", _rows("%%% not base64 %%%"))[0] < 500
    assert (
        400
        <= _post(
            f"{base}/invocations", {"dataframe_split": {"columns": ["picture"], "data": [["AAAA"]]}}
        )[0]
        < 500
    )
    assert _post(f"{base}/invocations", _rows(cat))[0] == 200


def _conv_model() -> keras.Model:
    from convnets.ml.models import build_catdog_convnet  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    return build_catdog_convnet((80, 80))


def test_a_heatmap_is_added_to_each_answered_row_only_when_asked(tmp_path):
    from tests.conftest import servable_model  # noqa: PLC0415

    served = servable_model(_conv_model(), tmp_path / "model")
    assert served.metadata.get_params_schema().to_dict() == [
        {"name": "grad_cam", "type": "boolean", "default": False, "shape": None}
    ]
    pictures = pd.DataFrame({"image": [jpeg_bytes(1, size=60), b"not a picture"]})
    plain = served.predict(pictures)
    assert list(plain.columns) == ["label", "probability_dog", "error", "error_code"]
    with_heatmaps = served.predict(pictures, params={"grad_cam": True})
    assert list(with_heatmaps.columns) == [*plain.columns, "grad_cam_png"]
    pd.testing.assert_frame_equal(with_heatmaps[plain.columns], plain)
    png = Image.open(io.BytesIO(base64.b64decode(with_heatmaps.grad_cam_png[0])))
    assert png.format == "PNG" and png.size == (80, 80)
    assert with_heatmaps.grad_cam_png[1] == ""  # an error row: no picture, no heatmap


@pytest.mark.processes
@pytest.mark.slow
def test_the_served_model_adds_a_heatmap_when_the_request_asks(model_server):
    _, _, base = model_server
    cat = jpeg_bytes(3001, size=60)
    status, plain = _post(f"{base}/invocations", _rows(cat))
    assert status == 200 and "grad_cam_png" not in plain["predictions"][0]
    status, answer = _post(
        f"{base}/invocations", {**_rows(cat, b"not an image"), "params": {"grad_cam": True}}
    )
    assert status == 200
    first, bad = answer["predictions"]
    assert {key: first[key] for key in plain["predictions"][0]} == plain["predictions"][0]
    png = Image.open(io.BytesIO(base64.b64decode(first["grad_cam_png"])))
    assert png.format == "PNG" and png.size == (80, 80)  # the model's input size
    assert bad["grad_cam_png"] == "" and bad["error_code"] == "not_an_image"
