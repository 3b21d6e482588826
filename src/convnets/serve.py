"""``python -m convnets.serve <model URI> [mlflow models serve options]``.

Before any worker starts, the model is loaded once as a worker would load it: an unknown
URI gets one line with the registered names, a damaged or incompatible model one line
naming the file and the version before it, each with exit status 2 within seconds
(workers would otherwise crash-loop and never answer). Then ``mlflow models serve
--env-manager local`` (the one serving path, unchanged) runs in a process group of its
own, one worker per core unless ``-w/--workers`` is given; Ctrl-C or SIGTERM stops the
whole group, so no uvicorn process outlives the command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from convnets import quiet

USAGE = "usage: python -m convnets.serve <model URI> [mlflow models serve options]"
EXIT_USER_ERROR = 2
STOP_TIMEOUT_S = 30.0


def check_model_uri(model_uri: str) -> str | None:
    """``None`` when ``model_uri`` is a servable model that loads, else the message."""
    from convnets.serving.model_source import (  # noqa: PLC0415
        load_servable_model,
        previous_version_advice,
    )

    try:
        load_servable_model(model_uri, previous_version_advice(model_uri), action="serve")
    except Exception as exc:  # noqa: BLE001 - ModelNotFound, DamagedModel: their message
        return str(exc)
    return None


def _usable_cores(cap: int = 8) -> int:
    """Cores this process may run on (a container's share, not the host's), at most ``cap``:
    each worker holds its own TensorFlow and model in memory."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, cap))


def serve(command: list[str]) -> int:
    """Run ``command`` in a process group of its own; a signal to this process is passed
    to the whole group (the handler only forwards it), and its status is returned."""
    server = subprocess.Popen(command, start_new_session=True)
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        try:
            os.killpg(server.pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    status = server.wait()
    try:  # what the server left of its group (uvicorn's workers)
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if received:  # stopped as asked: the status a shell gives a command a signal ended
        return 128 + received[0]
    return 128 - status if status < 0 else status


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return EXIT_USER_ERROR
    quiet.install()
    model_uri, options = argv[0], argv[1:]
    problem = check_model_uri(model_uri)
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    workers_given = any(
        option.startswith("-w") or option.split("=", 1)[0] == "--workers" for option in options
    )
    if not workers_given and "MLFLOW_MODELS_WORKERS" not in os.environ:
        # One uvicorn worker per core: a request of one picture leaves cores idle
        # (docs/benchmarks.md#serving).
        options = [*options, "--workers", str(_usable_cores())]
    # This interpreter's MLflow, not another environment's from PATH.
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    return serve([*command, "--env-manager", "local", *options])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
