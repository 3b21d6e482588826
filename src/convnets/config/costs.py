"""What image and batch sizes would cost that the disk or the memory does not have."""

from __future__ import annotations

from pathlib import Path

from convnets.parameters import CatsVsDogsData, ImageInput, MnistTraining

# A convnet keeps, per input value, several float32 activations and their gradients
# for the backward pass: a rough upper bound of the training memory per input byte.
ACTIVATIONS_PER_INPUT = 64
FLOAT32_BYTES = 4
RGB = 3
MNIST_IMAGE = (28, 28, 1)
MNIST_TRAIN_IMAGES = 60_000  # keras.datasets.mnist and fashion_mnist: a batch is at most this


def _gb(size: float) -> str:
    if size < 1e9:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.1f} GB" if size < 1e10 else f"{size / 1e9:.0f} GB"


def free_disk(path: Path) -> int:
    """Bytes free on the disk that ``path`` (or its nearest existing parent) is on."""
    import shutil  # noqa: PLC0415

    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def available_memory() -> int:
    """Bytes of memory a new allocation can get without swapping."""
    import psutil  # noqa: PLC0415

    return psutil.virtual_memory().available


def training_memory(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """Bytes a training step on one batch of ``image_shape`` pictures may need."""
    pixels = 1
    for side in image_shape:
        pixels *= side
    return batch_size * pixels * FLOAT32_BYTES * ACTIVATIONS_PER_INPUT


def _largest_batch(image_shape: tuple[int, ...], available: int) -> int:
    fits = available // training_memory(1, image_shape)
    return 1 << (int(fits).bit_length() - 1) if fits else 0  # a power of two


def _memory_problem(
    key: str, batch_size: int, batch: int, shape: tuple[int, ...], size_key: str | None
) -> list[str]:
    need = training_memory(batch, shape)
    available = available_memory()
    if need <= available:
        return []
    size = "x".join(map(str, shape[:2]))
    fits = _largest_batch(shape, available)
    if fits:
        fix = f"--params={key}.batch_size={min(fits, batch_size)}"
    elif size_key is not None and (side := int((available / need) ** 0.5 * shape[0])):
        fix = f"--params={size_key}={side}x{side}"  # the batch stays; the pictures shrink
    else:
        fix = "free memory (close other programs)"
    return [
        f"{key}.batch_size: a batch of {batch} pictures of {size} needs about {_gb(need)} "
        f"of memory to train; {_gb(available)} is available, so the run would be killed "
        f"for memory. Fix: {fix}"
    ]


def image_input_costs(
    key: str, image_input: ImageInput, split: CatsVsDogsData, cache: Path | None
) -> list[str]:
    """What ``image_input`` would cost that the machine does not have: the decoded cache
    on the disk of ``cache`` (unless made already for this size), a batch in memory."""
    height, width = image_input.image_size
    subsets = split.subsets
    per_class = subsets.train.size + subsets.validation.size + subsets.test.size
    images = len(split.classes) * per_class
    problems = []
    if cache is not None and not (Path(cache) / f"{height}x{width}").exists():
        need = images * height * width * RGB
        free = free_disk(Path(cache))
        if need > free:
            side = int((free / 2 / images / RGB) ** 0.5)  # half the free space at most
            problems.append(
                f"{key}.image_size: {height}x{width} needs about {_gb(need)} of decoded "
                f"cache ({images} pictures of cats_vs_dogs.subsets); the disk of {cache} has "
                f"{_gb(free)} free. Fix: --params={key}.image_size={side}x{side}"
                " (or free space on that disk)"
            )
    batch = min(image_input.batch_size, len(split.classes) * subsets.train.size)
    size_key = f"{key}.image_size"
    return problems + _memory_problem(
        key, image_input.batch_size, batch, (height, width, RGB), size_key
    )


def mnist_costs(key: str, training: MnistTraining) -> list[str]:
    """The memory a batch of ``training`` would need that the machine does not have."""
    batch = min(training.batch_size, MNIST_TRAIN_IMAGES)
    return _memory_problem(key, training.batch_size, batch, MNIST_IMAGE, None)
