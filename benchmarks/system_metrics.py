"""The cost of MLflow's system metrics (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true``) on a run.

    python benchmarks/system_metrics.py --rounds 3 --json benchmarks/results/system_metrics.json

Each round runs ``kedro run --pipelines=mnist`` (one epoch on the full MNIST data,
``data/01_raw/mnist.npz``) twice in fresh processes, without and with system metrics
(MLflow's ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``), the order alternating between
rounds. It reports each run's wall time and CPU time (user + sys of the process and its
children) and the ratio with / without.

``--project`` runs them in another Kedro project folder than this checkout (default: the
checkout, whose data/01_raw/mnist.npz is the full MNIST), e.g. a copy with smaller data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["kedro", "run", "--pipelines=mnist", "--params=mnist.training.epochs=1"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(system_metrics: bool, project: Path = ROOT) -> dict[str, float]:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] = "true" if system_metrics else "false"
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", *COMMAND],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(COMMAND)} failed in {project}:\n{done.stderr[-3000:]}")
    return {"wall_s": time.perf_counter() - wall, "cpu_s": _children_cpu() - cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="the Kedro project to run in (default: this one)"
    )
    args = parser.parse_args()
    rounds = []
    for number in range(args.rounds):
        order = [False, True] if number % 2 == 0 else [True, False]
        results = {flag: run_once(flag, args.project) for flag in order}
        off, on = results[False], results[True]
        rounds.append(
            {
                "order": ["with" if flag else "without" for flag in order],
                "without": off,
                "with": on,
                "wall_ratio": on["wall_s"] / off["wall_s"],
                "cpu_ratio": on["cpu_s"] / off["cpu_s"],
            }
        )
        print(
            f"round {number + 1}: without {off['wall_s']:.1f} s wall, {off['cpu_s']:.1f} s CPU; "
            f"with {on['wall_s']:.1f} s wall, {on['cpu_s']:.1f} s CPU",
            flush=True,
        )
    summary = {
        "median_wall_ratio": statistics.median(r["wall_ratio"] for r in rounds),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
    }
    print(
        f"median with/without: wall {summary['median_wall_ratio']:.3f}, "
        f"CPU {summary['median_cpu_ratio']:.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, **summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
