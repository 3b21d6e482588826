"""What the machine computes natively, and the precision ``precision: auto`` picks from it.

bfloat16 pays only where the processor computes it: x86 processors with ``avx512_bf16``
or AMX (``amx_bf16``) do, in oneDNN's convolutions and matrix products; elsewhere
TensorFlow emulates it, several times slower than float32 (docs/benchmarks.md). On a
GPU, mixed precision pays from tensor cores on: bfloat16 from compute capability 8.0,
float16 (with Keras' loss scaling) on 7.x.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # x86; Linux spells them so in cpuinfo
# The flags that choose oneDNN's kernels, so a step's speed; the others (mitigations,
# virtualisation) differ between hosts of one speed and would make costs incomparable.
COMPUTE_FLAG_PREFIXES = ("avx", "amx", "fma")
PROCESSOR_FLAGS_TAG = "processor_flags"  # the MLflow tag training costs are compared by


@functools.cache  # the processor does not change while a process runs
def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The processor's feature flags as Linux lists them; empty where it does not."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def compute_flags(flags: Iterable[str] | None = None) -> str:
    """The processor's compute flags, sorted and space-separated ("none" where Linux lists
    none): runs with the same value have comparable epoch times."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    compute = sorted(flag for flag in flags if flag.startswith(COMPUTE_FLAG_PREFIXES))
    return " ".join(compute) or "none"


@functools.cache
def gpu_compute_capabilities() -> tuple[tuple[int, int], ...]:
    """Compute capability of each GPU TensorFlow sees (none on a CPU-only machine)."""
    import tensorflow as tf  # noqa: PLC0415

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        if capability:
            capabilities.append(tuple(capability))
    return tuple(capabilities)


def resolve_precision(
    precision: str,
    flags: Iterable[str] | None = None,
    gpus: Iterable[tuple[int, int]] | None = None,
) -> tuple[str, str]:
    """The Keras dtype policy for ``precision`` and why it was chosen.

    An explicit policy is kept as it is. ``auto`` looks at the GPUs first (training
    runs there when there are any), then at the processor's flags; ``flags`` and
    ``gpus`` are read from the machine when not given.
    """
    if precision != "auto":
        return precision, "set explicitly"
    gpus = gpu_compute_capabilities() if gpus is None else tuple(gpus)
    if gpus:
        lowest = min(gpus)
        if lowest >= (8, 0):
            return "mixed_bfloat16", f"GPU compute capability {lowest[0]}.{lowest[1]} (>= 8.0)"
        if lowest >= (7, 0):
            return "mixed_float16", f"GPU compute capability {lowest[0]}.{lowest[1]} (7.x)"
        return "float32", f"GPU compute capability {lowest[0]}.{lowest[1]} (< 7.0)"
    flags = cpu_flags() if flags is None else frozenset(flags)
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return "mixed_bfloat16", f"the processor computes bfloat16 natively ({', '.join(native)})"
    return "float32", "the processor has no native bfloat16 (no amx_bf16 or avx512_bf16)"
