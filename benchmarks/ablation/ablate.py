#!/usr/bin/env python
"""One cats-vs-dogs ablation run per process (catdog_fast recipe search).

  python benchmarks/ablation/ablate.py cache --size 128   # decode + cache the split once per size
  python benchmarks/ablation/ablate.py train --name fast_v1_128 --size 128 --epochs 18

The script that measured the ablation rows of docs/catdog_fast.md, kept as it ran
(outside Kedro, so that many short runs pay no pipeline or MLflow overhead). Its
models are the project's ``build_catdog_convnet_fast`` variants (the same layers and
parameter counts: fast_v1 = block plain, fast_sep = convolution separable, fast_res =
block residual) and its optimiser the project's AdamW with warm-up and cosine decay.
Outputs go to data/ablation/ (ignored by git; ``--out DIR`` elsewhere, before the
command); the archive is ../shared/data's (``cache --archive`` or $CATS_VS_DOGS_ZIP:
another).

Split (per class, as the project does): train 0..999, val 1000..1499, test 1500..2499,
each subset taking `size` decodable images from its start index on (``cache
--subset-sizes TRAIN VALIDATION TEST``: other sizes from the same starts, default 1000
500 1000).
Decoding: tf.image.decode_image(channels=3, expand_animations=False), bilinear resize,
round, clip, uint8 (the project's DECODER).
Levers are chosen on validation accuracy; test accuracy is only reported.
"""

# ruff: noqa: PLC0415 - TensorFlow is imported where it is used, so --help answers at once

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "data" / "ablation"  # the default --out: cache/, logs/, results.jsonl
ZIP = os.environ.get("CATS_VS_DOGS_ZIP", str(ROOT.parent / "shared/data/dogs-vs-cats/train.zip"))
CLASSES = ["cat", "dog"]
SUBSETS = {"train": (0, 1000), "validation": (1000, 500), "test": (1500, 1000)}


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


# ----------------------------------------------------------------------------- cache
def build_cache(size: int, archive: str = ZIP, here: Path = HERE, sizes=None) -> None:
    """Decode the split at ``size``; ``sizes``: images per class of each subset, if not
    SUBSETS' (train, validation, test)."""
    import numpy as np
    import tensorflow as tf

    cache = here / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"images_{size}.npy"
    manifest_path = cache / f"manifest_{size}.json"
    z = zipfile.ZipFile(archive)
    names = set(z.namelist())
    images, labels, subset_of, files, failures = [], [], [], [], []
    counts = sizes or [count for _, count in SUBSETS.values()]
    for (subset, (start, _)), count in zip(SUBSETS.items(), counts, strict=True):
        for label, cls in enumerate(CLASSES):
            taken, index = 0, start
            while taken < count:
                name = f"train/{cls}.{index}.jpg"
                index += 1
                if name not in names:
                    failures.append({"file": name, "error": "missing"})
                    print(f"MISSING {name}", flush=True)
                    continue
                try:
                    img = tf.image.decode_image(z.read(name), channels=3, expand_animations=False)
                    img = tf.image.resize(img, (size, size), method="bilinear")
                    img = tf.cast(tf.round(tf.clip_by_value(img, 0.0, 255.0)), tf.uint8)
                except Exception as exc:  # noqa: BLE001 - report and take the next index
                    failures.append({"file": name, "error": repr(exc)[:300]})
                    print(f"UNDECODABLE {name}: {exc!r}"[:400], flush=True)
                    continue
                images.append(img.numpy())
                labels.append(label)
                subset_of.append(subset)
                files.append(name)
                taken += 1
    arr = np.stack(images)
    np.save(out, arr)
    manifest = {
        "size": size,
        "decoder": "tf.image.decode_image+resize_bilinear+round_uint8",
        "files": files,
        "labels": labels,
        "subset": subset_of,
        "failures": failures,
        "counts": {s: subset_of.count(s) for s in SUBSETS},
        "tf": tf.__version__,
    }
    manifest_path.write_text(json.dumps(manifest))
    print(f"cached {arr.shape} -> {out}; failures: {len(failures)}", flush=True)


def load_split(size: int, here: Path = HERE):
    import numpy as np

    arr = np.load(here / "cache" / f"images_{size}.npy")
    m = json.loads((here / "cache" / f"manifest_{size}.json").read_text())
    labels = np.asarray(m["labels"], dtype=np.float32)
    subset = np.asarray(m["subset"])
    return {s: (arr[subset == s], labels[subset == s]) for s in SUBSETS}


# ----------------------------------------------------------------------------- models
def augmentation(keras, layers, flip=True, rotation=0.1, zoom=0.2):
    aug = []
    if flip:
        aug.append(layers.RandomFlip("horizontal"))
    if rotation:
        aug.append(layers.RandomRotation(rotation))
    if zoom:
        aug.append(layers.RandomZoom(zoom))
    return keras.Sequential(aug, name="data_augmentation") if aug else None


def conv_bn_relu(layers, x, filters, separable=False, padding="valid"):
    Conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = Conv(filters, 3, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def build_model(cfg):
    import keras
    from keras import layers

    size = cfg["size"]
    inputs = keras.Input(shape=(size, size, 3))
    x = inputs
    aug = augmentation(keras, layers, cfg["flip"], cfg["rotation"], cfg["zoom"])
    if aug is not None:
        x = aug(x)
    x = layers.Rescaling(1.0 / 255)(x)
    arch = cfg["arch"]
    widths = [int(w) for w in cfg["widths"].split(",")] if cfg.get("widths") else None
    if arch == "book":  # listing 8.16
        for i, f in enumerate(widths or [32, 64, 128, 256, 256]):
            if i:
                x = layers.MaxPooling2D(2)(x)
            x = layers.Conv2D(f, 3, activation="relu")(x)
        x = layers.Flatten()(x)
    elif arch in ("fast_v1", "fast_sep"):  # book trunk, conv(no bias)+BN+ReLU, GAP head
        for i, f in enumerate(widths or [32, 64, 128, 256, 256]):
            if i:
                x = layers.MaxPooling2D(2)(x)
            x = conv_bn_relu(layers, x, f, separable=(arch == "fast_sep" and i > 0))
        x = layers.GlobalAveragePooling2D()(x)
    elif arch == "fast_res":  # chapter 9 residual blocks with BN, 1x1 projection, maxpool
        stem, *blocks = widths or [32, 32, 64, 128, 256]
        x = conv_bn_relu(layers, x, stem, padding="same")
        x = layers.MaxPooling2D(2)(x)
        for f in blocks:
            residual = x
            x = conv_bn_relu(layers, x, f, padding="same")
            x = conv_bn_relu(layers, x, f, padding="same")
            x = layers.MaxPooling2D(2, padding="same")(x)
            residual = layers.Conv2D(f, 1, strides=2, padding="same")(residual)
            x = layers.add([x, residual])
        x = layers.GlobalAveragePooling2D()(x)
    else:
        raise ValueError(arch)
    if cfg["dropout"]:
        x = layers.Dropout(cfg["dropout"])(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=cfg["name"])


def build_optimizer(cfg, steps_per_epoch):
    import keras

    if cfg["optimizer"] == "rmsprop":
        return keras.optimizers.RMSprop()  # the book's "rmsprop" string: lr 1e-3
    total = steps_per_epoch * cfg["epochs"]
    warmup = int(round(steps_per_epoch * cfg["warmup_epochs"]))
    if cfg["schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=max(1, total - warmup),
            alpha=0.0,
            warmup_target=cfg["lr"],
            warmup_steps=warmup,
        )
    else:
        lr = cfg["lr"]
    if cfg["optimizer"] == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    if cfg["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    raise ValueError(cfg["optimizer"])


# ----------------------------------------------------------------------------- train
def train(cfg, here: Path = HERE) -> None:
    t_wall0, t_cpu0 = time.time(), cpu_s()
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(cfg["seed"])
    data = load_split(cfg["size"], here)
    (xtr, ytr), (xva, yva), (xte, yte) = data["train"], data["validation"], data["test"]
    bs = cfg["batch_size"]
    steps = int(np.ceil(len(xtr) / bs))

    def ds(x, y, shuffle):
        d = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            d = d.shuffle(len(x), seed=cfg["seed"], reshuffle_each_iteration=True)
        d = d.batch(bs).map(lambda a, b: (tf.cast(a, tf.float32), b))
        return d.prefetch(tf.data.AUTOTUNE)

    train_ds, val_ds = ds(xtr, ytr, True), ds(xva, yva, False)
    model = build_model(cfg)
    loss = keras.losses.BinaryCrossentropy(label_smoothing=cfg["label_smoothing"])
    model.compile(
        optimizer=build_optimizer(cfg, steps),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=False,  # as the project's default (precision float32, jit_compile false)
    )
    params = int(model.count_params())
    log = open(here / "logs" / f"{cfg['name']}.epochs.jsonl", "w")
    print(json.dumps({"config": cfg, "params": params}), flush=True)

    class Track(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.best_acc, self.best_epoch, self.best_weights = [], -1.0, None, None
            self.stop_file = here / f"STOP_{cfg['name']}"

        def on_epoch_begin(self, epoch, logs=None):
            self.w0, self.c0 = time.time(), cpu_s()

        def on_epoch_end(self, epoch, logs=None):
            rec = {
                "epoch": epoch + 1,
                **{k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"},
                "epoch_wall_s": round(time.time() - self.w0, 2),
                "epoch_cpu_s": round(cpu_s() - self.c0, 2),
                "elapsed_wall_s": round(time.time() - t_wall0, 1),
            }
            self.epochs.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            if rec["val_accuracy"] > self.best_acc:  # first epoch of the max wins ties
                self.best_acc, self.best_epoch = rec["val_accuracy"], epoch + 1
                self.best_weights = [w.copy() for w in self.model.get_weights()]
            if self.stop_file.exists():  # clean stop on request
                print("STOP file seen: stopping after this epoch", flush=True)
                self.model.stop_training = True

    track = Track()
    t_fit0, c_fit0 = time.time(), cpu_s()
    model.fit(train_ds, validation_data=val_ds, epochs=cfg["epochs"], callbacks=[track], verbose=2)
    fit_wall, fit_cpu = time.time() - t_fit0, cpu_s() - c_fit0

    def test_acc(tta: bool) -> float:
        p = model.predict(xte.astype(np.float32), batch_size=64, verbose=0)[:, 0]
        if tta:
            p2 = model.predict(xte[:, :, ::-1, :].astype(np.float32), batch_size=64, verbose=0)[
                :, 0
            ]
            p = (p + p2) / 2
        return float(np.mean((p > 0.5) == (yte > 0.5)))

    t_eval0 = time.time()
    last = {"test_acc_last": test_acc(False), "test_acc_last_tta": test_acc(True)}
    model.set_weights(track.best_weights)
    best = {"test_acc_best": test_acc(False), "test_acc_best_tta": test_acc(True)}
    eval_wall = time.time() - t_eval0
    walls = sorted(e["epoch_wall_s"] for e in track.epochs)
    cpus = sorted(e["epoch_cpu_s"] for e in track.epochs)
    n = len(walls)
    med = lambda v: (v[(n - 1) // 2] + v[n // 2]) / 2  # noqa: E731
    result = {
        "name": cfg["name"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": cfg,
        "params": params,
        "epochs_planned": cfg["epochs"],
        "epochs_done": n,
        "complete": n == cfg["epochs"],
        "best_val_accuracy": track.best_acc,
        "best_epoch": track.best_epoch,
        "last_val_accuracy": track.epochs[-1]["val_accuracy"],
        **best,
        **last,
        "fit_wall_s": round(fit_wall, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "median_epoch_wall_s": round(med(walls), 2),
        "median_epoch_cpu_s": round(med(cpus), 2),
        "test_eval_wall_s": round(eval_wall, 1),
        "total_wall_s": round(time.time() - t_wall0, 1),
        "total_cpu_s": round(cpu_s() - t_cpu0, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "loadavg_end": os.getloadavg(),
        "nice": os.nice(0),
        "versions": {"tf": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    with open(here / "results.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=HERE, help=f"outputs (default {HERE})")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--size", type=int, required=True)
    c.add_argument("--archive", default=ZIP, help=f"Kaggle's train.zip (default {ZIP})")
    c.add_argument(
        "--subset-sizes",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="images per class of each subset (default 1000 500 1000)",
    )
    t = sub.add_parser("train")
    t.add_argument("--name", required=True)
    t.add_argument("--arch", default="fast_v1", choices=["book", "fast_v1", "fast_sep", "fast_res"])
    t.add_argument("--widths", default="")
    t.add_argument("--size", type=int, default=128)
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dropout", type=float, default=0.3)
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "rmsprop"])
    t.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup-epochs", type=float, default=1.0)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--label-smoothing", type=float, default=0.05)
    t.add_argument("--no-flip", dest="flip", action="store_false")
    t.add_argument("--rotation", type=float, default=0.1)
    t.add_argument("--zoom", type=float, default=0.2)
    a = p.parse_args(argv)
    if a.cmd == "cache":
        build_cache(a.size, a.archive, a.out, a.subset_sizes)
        return
    cfg = {k: v for k, v in vars(a).items() if k not in ("cmd", "out")}
    cfg["argv"] = " ".join(sys.argv[1:])
    (a.out / "logs").mkdir(parents=True, exist_ok=True)
    train(cfg, a.out)


if __name__ == "__main__":
    main()
