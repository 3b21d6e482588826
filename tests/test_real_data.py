"""Opt-in checks on the real data in ../shared/data: ``pytest -m realdata`` (minutes).

The project's catalog is pointed at the shared files through conf/local in a
temporary copy of the project; nothing is copied into the repository.
"""

from pathlib import Path

import mlflow
import pytest

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_end_to_end import _only_run, _run

SHARED = PROJECT_ROOT.parent / "shared" / "data"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is not here"),
]


@pytest.fixture
def real_project(kedro_project: Path) -> Path:
    (kedro_project / "conf" / "local" / "catalog.yml").write_text(
        f"""
mnist_raw:
  type: convnets.datasets.KerasNpzDataset
  filepath: {SHARED / "mnist" / "mnist.npz"}
cats_vs_dogs_raw:
  type: convnets.datasets.ImageArchiveDataset
  filepath: {SHARED / "dogs-vs-cats" / "train.zip"}
"""
    )
    return kedro_project


def test_mnist_reaches_the_books_accuracy(real_project):
    _run(real_project, "mnist", {})
    run = _only_run(real_project, "convnets")
    assert run.data.metrics["final_model_test_accuracy"] >= 0.99


def test_catdog_quick_environment_finishes_on_real_images(real_project):
    # conf/local is not read with --env=quick, so the shared archive is linked in.
    raw = real_project / "data" / "01_raw" / "cats_vs_dogs"
    (raw / "train.zip").unlink()
    (raw / "train.zip").symlink_to(SHARED / "dogs-vs-cats" / "train.zip")
    _run(real_project, "catdog", {}, env="quick")
    run = _only_run(real_project, "convnets-quick")
    assert run.info.status == "FINISHED"
    assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_loss")) == 2
