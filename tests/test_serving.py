"""The servable model: bytes in, one answer per row, the same input as training and predict."""

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
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
from convnets.serving import ServingConfig, classify
from tests.conftest import jpeg_bytes, png_header, typed_parameters

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
    assert list(answer.columns) == ["label", "probability_dog", "error"]
    assert list(answer.label) == ["dog", "", "", "", "", "dog"]
    assert answer.probability_dog[[0, 5]].tolist() == pytest.approx([0.9, 0.9])
    assert answer.probability_dog[1:5].isna().all()
    assert answer.error[1].startswith("UnidentifiedImageError")
    assert answer.error[2] == "ValueError: empty image"
    assert answer.error[3] != ""
    assert answer.error[4].startswith("ImageTooLarge: 144,000,000 pixels declared")
    assert [len(batch) for batch in model.batches] == [2]  # the good rows, decoded once


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

    predicting = RecordingModel()
    predict = typed_parameters(Predict, "predict", grid_images=1)
    predict_images({"cat.1.jpg": lambda: picture}, predicting, DATA, predict)

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    keras_model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    keras_file = tmp_path / "model.keras"
    keras_model.save(keras_file)
    saved = tmp_path / "served"
    mlflow.pyfunc.save_model(
        saved,
        python_model=str(Path(convnets.__file__).parent / "serving_model.py"),
        artifacts={"keras_model": str(keras_file)},
        model_config=CONFIG.as_model_config(),
        signature=CONFIG.signature(),
        input_example=pd.DataFrame({"image": [picture]}),
    )
    served = mlflow.pyfunc.load_model(str(saved))
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
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _rows(*pictures: bytes | str) -> dict:
    encoded = [p if isinstance(p, str) else base64.b64encode(p).decode() for p in pictures]
    return {"dataframe_split": {"columns": ["image"], "data": [[item] for item in encoded]}}


@pytest.fixture
def model_server(kedro_project):
    """``mlflow models serve`` of the champion of a tiny catdog_baseline run, on 127.0.0.1."""
    from tests.pipelines.test_end_to_end import TINY_CATDOG, _run  # noqa: PLC0415

    _run(kedro_project, "catdog_baseline", {**TINY_CATDOG, "catdog_baseline.training.epochs": 1})
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
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = (kedro_project / "model_server.log").read_text()[-2000:]
                    raise RuntimeError(f"model server did not start: {output}") from None
                time.sleep(1)
        yield kedro_project, uri, base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


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
    assert rows[4]["label"] == served.label[1]
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
