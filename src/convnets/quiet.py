"""The one place where third-party start-up noise is filtered, each filter with its reason.

``install()`` is called by ``settings.py``, which Kedro imports before any pipeline,
config loader or dataset, so every ``kedro`` command and ``KedroSession`` gets the same
filters. Filters match a module or a message, never all warnings, so the project's own
warnings and new third-party ones still show.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# TensorFlow's C++ start-up lines, written to file descriptor 2 before its logging is
# initialised, so that neither TF_CPP_MIN_LOG_LEVEL nor Python can filter them: the
# oneDNN notice, "Could not find cuda drivers", the CPU-feature notice, and cuInit's
# error on a machine without a GPU.
TENSORFLOW_STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\)|port\.cc:\d+\] oneDNN custom operations"
    r"|cudart_stub\.cc|I\d{4} [\d:. ]+\d+ cpu_feature_guard\.cc|^To enable the following"
    r" instructions:|cuda_platform\.cc:\d+\] failed call to cuInit"
)

# Deprecations raised inside dependencies, not by code a user of this project can change.
WARNING_FILTERS: tuple[tuple[str, type[Warning], str], ...] = (
    # Kedro and kedro-mlflow register resolvers with OmegaConf's old name.
    (r"register_new_resolver\(\) is deprecated", UserWarning, r"kedro"),
    (r"register_new_resolver\(\) is deprecated", UserWarning, r"kedro_mlflow"),
    # kedro-mlflow's and Kedro's pydantic models use pydantic 1 idioms.
    (r"", DeprecationWarning, r"kedro_mlflow\.config"),
    (r"", DeprecationWarning, r"kedro\.validation"),
    (r"__array__ implementation doesn't accept a copy keyword", DeprecationWarning, r"keras"),
    (r"The ``noload`` loader strategy is deprecated", DeprecationWarning, r"mlflow"),
    (r"Operation with range is deprecated", Warning, r"mlflow"),
)


class _MessageFilter(logging.Filter):
    """Drops log records whose message matches, from one third-party logger."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self._pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._pattern.search(record.getMessage())


# The servable model carries a pyfunc signature; the Keras "model" artifact is logged
# for loading, with tensors in, and a signature would describe nothing a user sends.
LOG_FILTERS = {
    "mlflow.models.model": r"without specifying model signature|Input example should be provided",
    "mlflow.keras.save": r"without specifying model signature",
    "mlflow.tensorflow": r"without specifying model signature",
}


@contextmanager
def stderr_filtered(noise: re.Pattern[str] = TENSORFLOW_STARTUP_NOISE) -> Iterator[None]:
    """Capture file descriptor 2 and replay every line that is not ``noise`` afterwards.

    Any problem setting the capture up means no filtering, never a failed import.
    """
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        captured = tempfile.TemporaryFile()
    except (OSError, ValueError):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some notebook or service hosts)
        captured.close()
        yield
        return
    try:
        os.dup2(captured.fileno(), 2)
        yield
    finally:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", "replace")
        captured.close()
        kept = [line for line in text.splitlines(keepends=True) if not noise.search(line)]
        if kept:
            os.write(2, "".join(kept).encode("utf-8", "replace"))


class _QuietTensorFlowLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with stderr_filtered():
            self._loader.exec_module(module)
            # cuInit runs at the first device query; run it here, inside the filter.
            module.config.list_physical_devices()

    def load_module(self, fullname: str):
        # The legacy protocol, still used by MLflow's post-import hooks that wrap loaders.
        with stderr_filtered():
            module = self._loader.load_module(fullname)
            module.config.list_physical_devices()
        return module


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow`` (direct or through Keras) in the filter."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietTensorFlowLoader(spec.loader)
        return spec


def install() -> None:
    """Set up every filter once per process; cheap, and imports nothing heavy."""
    # TensorFlow's C++ INFO and WARNING lines (oneDNN's "DT_UINT8 only on platforms
    # with AVX-512", which it also prints where AVX-512 is present); errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # MLflow's tqdm bars for every artifact download (a model load shows several).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    for message, category, module in WARNING_FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for logger_name, pattern in LOG_FILTERS.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(f, _MessageFilter) for f in logger.filters):
            logger.addFilter(_MessageFilter(pattern))
    if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
