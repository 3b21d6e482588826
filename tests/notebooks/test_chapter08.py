"""notebooks/chapter08.ipynb runs top to bottom on tiny runs, and is kept without outputs."""

from pathlib import Path

import nbformat
import pytest

from tests.pipelines.test_end_to_end import TINY_CATDOG, _run

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "chapter08.ipynb"


def _execute(project: Path) -> nbformat.NotebookNode:
    """Every cell of the notebook, its kernel started in ``project/notebooks`` as Jupyter
    does; fails naming each error."""
    from nbclient import NotebookClient  # noqa: PLC0415

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    folder = project / "notebooks"
    folder.mkdir(exist_ok=True)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    assert not (folder / "mlflow.db").exists()  # the project's store, not a new one
    # kedro.ipython shows tracebacks with rich, as display data rather than errors.
    errors = [
        f"cell {index}: {output.get('ename', '')} {output.get('evalue', '')}"
        f"{output.get('data', {}).get('text/plain', '')[-600:]}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
        or "Traceback" in output.get("data", {}).get("text/plain", "")
    ]
    assert not errors, "\n".join(errors)
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        output.get("text", "") + str(output.get("data", {}).get("text/markdown", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.parametrize("env", [None, "quick"])
def test_every_cell_shows_real_runs_from_where_jupyter_starts(kedro_project, monkeypatch, env):
    _run(kedro_project, "mnist", {"mnist.training.epochs": 1}, env=env)
    _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.training.epochs": 1}, env=env)
    if env:
        monkeypatch.setenv("KEDRO_ENV", env)
    notebook = _execute(kedro_project)
    text = _text(notebook)
    assert "104,202 parameters" in text
    assert "| `mnist` |" in text and "| `catdog` |" in text
    assert "No finished training run" not in text and "No registered" not in text
    registry = "convnets-quick" if env else "convnets"
    assert f"models:/{registry}-catdog@champion" in text
    pictures = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert pictures == 4  # samples, augmentation, curves, predictions


@pytest.mark.processes
@pytest.mark.slow
def test_without_runs_the_notebook_says_which_run_to_do_first(kedro_project):
    import mlflow  # noqa: PLC0415

    _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.training.epochs": 1})
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        client.delete_run(run.info.run_id)
    for model in client.search_registered_models():
        client.delete_registered_model(model.name)
    text = _text(_execute(kedro_project))
    assert "run `kedro run --pipelines=mnist` (or catdog, ...) first" in text
    assert "No registered cats-vs-dogs model yet: run `kedro run --pipelines=catdog` first" in text
    assert "run one first, for example `kedro run --pipelines=mnist`" in text


@pytest.mark.processes
@pytest.mark.slow
def test_the_explain_figures_are_shown_from_the_explain_run(kedro_project):
    """A training, then ``explain``, then the notebook: its section 9.4 cell shows the
    explain run's heatmaps and worst mistakes and the catalog's scores, not recomputed."""
    from tests.pipelines.explain.test_pipeline import TINY_EXPLAIN  # noqa: PLC0415

    _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.training.epochs": 1})
    _run(kedro_project, "explain", {**TINY_EXPLAIN, "predict_model": "catdog"})
    notebook = _execute(kedro_project)
    (cell,) = [cell for cell in notebook.cells if "explain_runs" in cell.source]
    text = "".join(output.get("text", "") for output in cell.outputs)
    assert "Explain run " in text and "ROC AUC" in text and "expected calibration error" in text
    images = sum("image/png" in output.get("data", {}) for output in cell.outputs)
    assert images == 2  # grad_cam.png and worst_mistakes.png, downloaded from the run
    assert any("text/html" in output.get("data", {}) for output in cell.outputs)  # scores
