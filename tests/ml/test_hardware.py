"""``precision: auto`` decides from the hardware it is given, not from the test machine."""

import numpy as np
import pytest

from convnets.ml.hardware import compute_flags, cpu_flags, resolve_precision

AVX2 = {"fpu", "sse2", "avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_vnni", "avx512_bf16"}
AMX = AVX2 | {"avx512f", "amx_tile", "amx_bf16"}


@pytest.mark.parametrize(
    "flags, expected",
    [
        (AVX2, "float32"),
        (AVX512_BF16, "mixed_bfloat16"),
        (AMX, "mixed_bfloat16"),
        (set(), "float32"),
    ],
)
def test_auto_follows_the_processor_flags(flags, expected):
    policy, reason = resolve_precision("auto", flags=flags, gpus=[])
    assert policy == expected
    assert ("natively" in reason) == (expected == "mixed_bfloat16")


@pytest.mark.parametrize(
    "gpus, expected",
    [
        ([(8, 6)], "mixed_bfloat16"),
        ([(7, 5)], "mixed_float16"),
        ([(6, 1)], "float32"),
        ([(8, 0), (7, 0)], "mixed_float16"),
    ],
)
def test_auto_on_gpus_follows_the_lowest_compute_capability(gpus, expected):
    assert resolve_precision("auto", flags=AMX, gpus=gpus)[0] == expected


def test_an_explicit_precision_is_kept():
    assert resolve_precision("float32", flags=AMX, gpus=[]) == ("float32", "set explicitly")
    assert resolve_precision("mixed_bfloat16", flags=AVX2, gpus=[])[0] == "mixed_bfloat16"


def test_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_a_model_trained_in_bfloat16_saves_loads_and_predicts_float32(tmp_path):
    import keras  # noqa: PLC0415

    from convnets.ml.models import build_mnist_convnet  # noqa: PLC0415
    from convnets.ml.training import precision_policy  # noqa: PLC0415

    with precision_policy("mixed_bfloat16"):
        model = build_mnist_convnet(input_shape=(28, 28, 1), num_classes=10)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 16)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.layers[1].compute_dtype == "bfloat16"
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    predictions = loaded.predict(x, verbose=0)
    assert predictions.dtype == np.float32
    assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-3)
    assert np.allclose(predictions, model.predict(x, verbose=0), atol=1e-6)


def test_compute_flags_keep_only_what_chooses_the_kernels():
    flags = {"fpu", "avx2", "avx512_bf16", "amx_tile", "fma", "md_clear", "hypervisor"}
    assert compute_flags(flags) == "amx_tile avx2 avx512_bf16 fma"
    assert compute_flags(set()) == "none"
