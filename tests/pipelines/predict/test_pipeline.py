"""``kedro run --pipelines=predict`` on a hostile folder, as a real process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import exif_rotated_jpeg, log_servable_run, upright_pixels
from tests.pipelines.predict.test_nodes import top_bright_model
from tests.test_cli import KEDRO, environment

pytestmark = pytest.mark.slow

# Runs a command and prints its peak memory: RUSAGE_CHILDREN of a process whose only
# child is the command, so no other test's process counts.
PEAK_OF = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "out": done.stdout[-4000:], "err": done.stderr[-4000:],
    "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), value, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _hostile_folder(root) -> tuple[os.PathLike, dict[str, str]]:
    """The folder, and each entry's name as predictions.csv must write it, with its error."""
    folder = root / "pictures"
    folder.mkdir()
    (folder / "dog.1.jpg").write_bytes(_jpeg(250))
    (folder / "cat.2.jpg").write_bytes(_jpeg(5))
    (folder / os.fsdecode(b"bad_utf8_\xff\xfe.jpg")).write_bytes(_jpeg(128))
    (folder / "=SUM(1+1)*cmd.jpg").write_bytes(_jpeg(128))
    (folder / "phone.jpg").write_bytes(exif_rotated_jpeg(upright_pixels(), 6))
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    outside = root / "big.bin"
    with outside.open("wb") as file:
        file.truncate(2 * 2**30)  # 2 GiB, sparse
    (folder / "big.jpg").symlink_to(outside)
    with (folder / "huge.jpg").open("wb") as file:
        file.truncate(2 * 2**30)
    (folder / "x.jpg").mkdir()
    expected = {
        "dog.1.jpg": "",
        "cat.2.jpg": "",
        "bad_utf8_\\xff\\xfe.jpg": "",
        "'=SUM(1+1)*cmd.jpg": "",
        "phone.jpg": "",
        "pipe.jpg": "NotARegularFile: a FIFO (named pipe), not a regular file: not opened",
        "zero.jpg": "NotARegularFile: a symbolic link to /dev/zero, outside the folder",
        "big.jpg": f"NotARegularFile: a symbolic link to {outside}, outside the folder",
        "huge.jpg": "PictureTooLarge: 2,147,483,648 bytes, more than the 52,428,800 allowed",
        "x.jpg": "NotARegularFile: a directory, not a picture",
    }
    return folder, expected


@pytest.mark.processes
def test_predict_on_a_hostile_folder_gives_one_row_per_entry_quickly_in_bounded_memory(
    kedro_project, tmp_path
):
    from kedro.io import Version  # noqa: PLC0415
    from kedro_datasets.tensorflow import TensorFlowModelDataset  # noqa: PLC0415

    from convnets.ml.preprocessing import to_model_input  # noqa: PLC0415

    checkpoint = kedro_project / "data" / "06_models" / "catdog" / "best_checkpoint.keras"
    version = "2026-01-01T00.00.00.000Z"
    TensorFlowModelDataset(filepath=str(checkpoint), version=Version(None, version)).save(
        top_bright_model()
    )
    log_servable_run(kedro_project, top_bright_model(), version)  # the run that saved it
    folder, expected = _hostile_folder(tmp_path)

    command = [KEDRO, "run", "--pipelines=predict", f"--params=predict_dir={folder}"]
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", PEAK_OF, *command],
        cwd=kedro_project,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a hung run is killed with everything it started
    )
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("predict did not finish within a minute")
    elapsed = time.monotonic() - started
    done = json.loads(out)
    assert done["rc"] == 0, done["out"] + done["err"]
    assert elapsed < 60
    assert done["peak_kb"] / 2**20 < 1.5, f"peak {done['peak_kb'] / 2**20:.2f} GiB"

    table = pd.read_csv(
        kedro_project / "data" / "07_model_output" / "predictions.csv", keep_default_na=False
    )
    assert sorted(table.file) == sorted(expected)  # one row per entry, names as written
    by_file = table.set_index("file")
    for name, error in expected.items():
        if error:
            assert by_file.loc[name, "error"].startswith(error), name
            assert by_file.loc[name, "probability_dog"] == ""
            code = "too_large" if error.startswith("PictureTooLarge") else "not_a_regular_file"
            assert by_file.loc[name, "error_code"] == code, name
        else:
            assert by_file.loc[name, "error"] == "", name
            assert 0 <= float(by_file.loc[name, "probability_dog"]) <= 1
    # The model tells up from down: the phone's picture reached it upright.
    assert float(by_file.loc["phone.jpg", "probability_dog"]) > 0.99
    decoded = to_model_input((folder / "phone.jpg").read_bytes(), (40, 60), 10**6)
    assert np.abs(decoded.astype(int) - upright_pixels()).mean() < 2
