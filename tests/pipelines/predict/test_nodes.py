"""The predict node on tiny pictures and a tiny model."""

import io
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from convnets.parameters import Predict
from convnets.pipelines.predict import nodes
from tests.conftest import (
    exif_rotated_jpeg,
    jpeg_bytes,
    png_header,
    servable_model,
    typed_parameters,
    upright_pixels,
)

PREDICT = typed_parameters(Predict, "predict", grid_images=4)


def _loader(content: bytes):
    return lambda: content


def _brightness_model() -> keras.Model:
    """Dog when the picture is bright: mean pixel / 255 through a fixed sigmoid."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)  # 20 x mean / 255 - 10
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.full((3, 1), 20.0 / (3 * 255.0)), np.array([-10.0])])
    return model


@pytest.fixture(scope="module")
def brightness_model(tmp_path_factory):
    """The brightness model as the servable model predict loads."""
    return servable_model(_brightness_model(), tmp_path_factory.mktemp("servable") / "model")


def top_bright_model(size: int = 32) -> keras.Model:
    """Dog when the top half is brighter than the bottom: it sees which way is up.

    Standard layers only, so it saves and loads as a ``.keras`` file.
    """
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    weights = np.ones((size, size, 3), dtype="float32")
    weights[size // 2 :] = -1.0
    scale = 20.0 / (255.0 * weights.size / 2)
    model.layers[-1].set_weights([(weights * scale).reshape(-1, 1), np.zeros(1, "float32")])
    return model


def _solid_jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), value, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_every_file_gets_a_row_and_unreadable_ones_an_error(brightness_model):
    images = {
        "dog.1.jpg": _loader(_solid_jpeg(250)),
        "cat.2.jpg": _loader(_solid_jpeg(5)),
        "mine.jpg": _loader(_solid_jpeg(240)),
        "broken.jpg": _loader(b"not an image"),
        "cut.jpg": _loader(jpeg_bytes(1, size=64)[:200]),
    }
    table, metrics, figure = nodes.predict_images(images, brightness_model, PREDICT)
    by_file = table.set_index("file")
    assert list(table.file) == sorted(images)
    assert by_file.loc["dog.1.jpg", "label"] == "dog"
    assert by_file.loc["dog.1.jpg", "probability_dog"] > 0.99
    assert by_file.loc["cat.2.jpg", "label"] == "cat"
    assert by_file.loc["mine.jpg", "true_label"] == ""
    assert by_file.loc["broken.jpg", "error"].startswith("UnidentifiedImageError")
    assert " at 0x" not in by_file.loc["broken.jpg", "error"]  # no object address
    assert by_file.loc["cut.jpg", "error"] != ""
    assert np.isnan(by_file.loc["broken.jpg", "probability_dog"])
    assert metrics["predict_accuracy"]["value"] == 1.0
    assert metrics["predict_labelled_images"]["value"] == 2
    assert len([axis for axis in figure.axes if axis.images]) == 3


def test_an_empty_folder_says_where_pictures_go(brightness_model):
    with pytest.raises(ValueError, match="predict_dir"):
        nodes.predict_images({}, brightness_model, PREDICT)


def test_the_grid_shows_pictures_from_across_the_folder(brightness_model):
    images = {f"cat.{i}.jpg": _loader(_solid_jpeg(5)) for i in range(10)}
    images.update({f"dog.{i}.jpg": _loader(_solid_jpeg(250)) for i in range(10)})
    _, _, figure = nodes.predict_images(images, brightness_model, PREDICT)
    titles = [axis.get_title() for axis in figure.axes if axis.images]
    assert len(titles) == 4
    assert any(title.startswith("cat") for title in titles)
    assert any(title.startswith("dog") for title in titles)


def test_a_picture_over_the_pixel_limit_is_refused_from_its_header(brightness_model):
    huge = png_header(12000, 12000)  # the pixels are never decoded
    images = {"huge.png": _loader(huge), "dog.1.jpg": _loader(_solid_jpeg(250))}
    table, _, _ = nodes.predict_images(images, brightness_model, PREDICT)
    error = table.set_index("file").loc["huge.png", "error"]
    assert error.startswith("ImageTooLarge: 144,000,000 pixels declared, more than the 40,000,000")
    assert table.set_index("file").loc["dog.1.jpg", "label"] == "dog"


def test_a_phone_picture_reaches_the_model_upright_and_is_drawn_upright(tmp_path):
    phone = exif_rotated_jpeg(upright_pixels(), 6)
    untagged = io.BytesIO()
    Image.open(io.BytesIO(phone)).save(untagged, format="JPEG", quality=95)  # no EXIF
    images = {"phone.jpg": _loader(phone), "stored.jpg": _loader(untagged.getvalue())}
    model = servable_model(top_bright_model(), tmp_path / "model")
    table, _, figure = nodes.predict_images(images, model, PREDICT)
    probability = table.set_index("file").probability_dog
    assert probability["phone.jpg"] > 0.99  # bright top: upright
    assert probability["stored.jpg"] < 0.9  # the same pixels as stored: on their side
    drawn = [axis.images[0].get_array() for axis in figure.axes if axis.images]
    assert drawn[0].shape[:2] == (40, 60)  # phone.jpg, drawn upright (wider than high)


def test_names_are_written_losslessly_and_no_cell_is_a_formula(brightness_model, tmp_path):
    images = {
        "=SUM(1+1)*cmd.jpg": _loader(_solid_jpeg(250)),
        "+1.jpg": _loader(_solid_jpeg(250)),
        "-1.jpg": _loader(_solid_jpeg(250)),
        "@x.jpg": _loader(_solid_jpeg(250)),
        "\tx.jpg": _loader(_solid_jpeg(250)),
        "bad_utf8_\udcff\udcfe.jpg": _loader(_solid_jpeg(5)),  # os.fsdecode(b"\xff\xfe")
        "ok.jpg": _loader(_solid_jpeg(5)),
    }
    table, _, _ = nodes.predict_images(images, brightness_model, PREDICT)
    path = tmp_path / "predictions.csv"
    table.to_csv(path, index=False)  # as the catalog's CSVDataset writes it: UTF-8
    written = pd.read_csv(path, keep_default_na=False)
    assert sorted(written.file) == sorted(
        [
            "'=SUM(1+1)*cmd.jpg",
            "'+1.jpg",
            "'-1.jpg",
            "'@x.jpg",
            "'\tx.jpg",
            "bad_utf8_\\xff\\xfe.jpg",
            "ok.jpg",
        ]
    )
    assert (written.error == "").all()
    assert written.set_index("file").loc["bad_utf8_\\xff\\xfe.jpg", "label"] == "cat"


def test_error_rows_of_the_folder_name_why_and_cannot_crash_the_table(brightness_model):
    from convnets.datasets.picture_folder import NotARegularFile  # noqa: PLC0415

    def refused():
        raise NotARegularFile("a FIFO (named pipe), not a regular file: not opened")

    def bad_text():
        raise OSError("a message with a lone \udcff surrogate")

    images = {"pipe.jpg": refused, "odd.jpg": bad_text, "dog.1.jpg": _loader(_solid_jpeg(250))}
    table, _, _ = nodes.predict_images(images, brightness_model, PREDICT)
    errors = table.set_index("file").error
    assert (
        errors["pipe.jpg"] == "NotARegularFile: a FIFO (named pipe), not a regular file: not opened"
    )
    assert errors["odd.jpg"] == "OSError: a message with a lone \\udcff surrogate"
    assert errors["dog.1.jpg"] == ""


def test_files_are_read_a_bounded_chunk_at_a_time(brightness_model, monkeypatch):
    events = []
    content = _solid_jpeg(250)

    def loader(name):
        def load():
            events.append(("read", name))
            return content

        return load

    real_predict = brightness_model.predict

    def classify(model_input):
        events.append(("classify", len(model_input)))
        return real_predict(model_input)

    monkeypatch.setattr(brightness_model, "predict", classify)
    monkeypatch.setattr(nodes, "PREDICT_CHUNK_BYTES", 3 * len(content))
    images = {f"{index:02}.jpg": loader(f"{index:02}.jpg") for index in range(8)}
    table, _, _ = nodes.predict_images(images, brightness_model, PREDICT)
    assert len(table) == 8
    batches = [size for kind, size in events if kind == "classify"]
    assert batches == [3, 3, 2]  # never more than about PREDICT_CHUNK_BYTES held
    assert events.index(("classify", 3)) == 3  # the fourth file is read after the first batch


PREDICT_IN_A_PROCESS = """
import resource, sys
import keras
from pathlib import Path
from convnets.parameters import Predict
from convnets.pipelines.predict import nodes
from tests.conftest import servable_model, typed_parameters

inputs = keras.Input((32, 32, 3))
x = keras.layers.GlobalAveragePooling2D()(inputs)
model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
model = servable_model(model, Path(sys.argv[2]))
predict = typed_parameters(Predict, "predict", grid_images=1)
huge = open(sys.argv[1], "rb").read()
table, _, _ = nodes.predict_images({"huge.png": lambda: huge}, model, predict)
print(table.error[0])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.processes
@pytest.mark.slow
def test_predict_on_a_real_12000_pixel_square_png_stays_under_3_gb(tmp_path):
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    huge = tmp_path / "huge.png"
    Image.new("L", (12000, 12000), color=40).save(huge, format="PNG")  # small on disk
    done = subprocess.run(
        [sys.executable, "-c", PREDICT_IN_A_PROCESS, str(huge), str(tmp_path / "model")],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    error, peak_mb = done.stdout.strip().splitlines()[-2:]
    assert error.startswith("ImageTooLarge: 144,000,000 pixels declared")
    assert int(peak_mb) < 3000


def test_the_model_used_is_named_and_a_quick_one_is_warned_about(caplog):
    description = {
        "model_source": "models:/convnets-quick-catdog@champion",
        "model_registered_name": "convnets-quick-catdog",
        "model_version": "3",
        "model_run_id": "abc",
        "model_epochs": "2",
        "model_test_accuracy": "0.5050",
        "model_is_quick": "true",
    }
    with caplog.at_level("INFO", logger="convnets"):
        tags = nodes.describe_model(description)
    assert tags == description  # the same facts tag the predict run
    text = caplog.text
    assert "models:/convnets-quick-catdog@champion (version 3)" in text
    assert "MLflow run abc, 2 epochs, test accuracy 0.5050" in text
    assert "comes from a quick run" in text


def test_requests_stay_within_the_limits_stored_with_the_model(tmp_path, monkeypatch):
    content = _solid_jpeg(250)
    model = servable_model(
        _brightness_model(),
        tmp_path / "model",
        max_pictures_per_request=3,
        max_request_bytes=2 * len(content) + 10,
        decision_threshold=0.999999,  # the model's own threshold, not the parameters'
    )
    requests = []
    real_predict = model.predict

    def predict(model_input):
        requests.append((len(model_input), sum(map(len, model_input["image"]))))
        return real_predict(model_input)

    monkeypatch.setattr(model, "predict", predict)
    images = {f"dog.{index}.jpg": _loader(content) for index in range(5)}
    images["big.jpg"] = _loader(content * 3)
    table, _, _ = nodes.predict_images(images, model, PREDICT)
    assert all(count <= 3 and size <= 2 * len(content) + 10 for count, size in requests)
    assert sum(count for count, _ in requests) == 6 and len(requests) == 3
    by_file = table.set_index("file")
    assert by_file.loc["big.jpg", "error_code"] == "too_large"
    assert "serving.max_request_bytes" in by_file.loc["big.jpg", "error"]
    assert (by_file.loc[[f"dog.{index}.jpg" for index in range(5)], "label"] == "cat").all()
