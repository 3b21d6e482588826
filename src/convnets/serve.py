"""``python -m convnets.serve <model URI> [mlflow models serve options]``.

``mlflow models serve`` on a model name that is not registered ends in a long Python
traceback. This checks the URI first and, when it resolves, hands over to
``mlflow models serve --env-manager local`` (the one serving path, unchanged); when it
does not, it prints one line with the registered names and exits with status 2.
Without ``-w/--workers`` it starts one worker per core.
"""

from __future__ import annotations

import os
import sys

from convnets import quiet

USAGE = "usage: python -m convnets.serve <model URI> [mlflow models serve options]"


def check_model_uri(model_uri: str) -> str | None:
    """``None`` when MLflow can resolve ``model_uri``, else the message to print."""
    import mlflow  # noqa: PLC0415

    from convnets.serving.model_source import unknown_model_message  # noqa: PLC0415

    try:
        mlflow.models.get_model_info(model_uri)  # reads the model's metadata, writes nothing
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to resolve is the user's to fix
        return unknown_model_message("serve", model_uri, exc)


def _usable_cores(cap: int = 8) -> int:
    """Cores this process may run on (a container's share, not the host's), at most ``cap``:
    each worker holds its own TensorFlow and model in memory."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, cap))


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    quiet.install()
    model_uri, options = argv[0], argv[1:]
    problem = check_model_uri(model_uri)
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        return 2
    workers_given = any(
        option.startswith("-w") or option.split("=", 1)[0] == "--workers" for option in options
    )
    if not workers_given and "MLFLOW_MODELS_WORKERS" not in os.environ:
        # One uvicorn worker per core: a request of one picture leaves cores idle
        # (docs/benchmarks.md#serving).
        options = [*options, "--workers", str(_usable_cores())]
    # This interpreter's MLflow, not another environment's from PATH.
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", *options]
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
