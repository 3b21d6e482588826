"""Ingestion of the cats-vs-dogs images: the book's ``make_subset`` (listing 8.6), made safe.

The node checks every image it has not checked before and decides the split here.
Writing the split is left to ``ImageFolderDataset``: it receives ``LazyFile`` values
for images checked by an earlier run, reads them again only if the folder must be
rewritten, and logs the time that takes.
"""

from __future__ import annotations

import logging

import pandas as pd

from convnets import stopping
from convnets.datasets import ImageArchive, LazyFile, UnreadableEntry
from convnets.ml.image_checks import check_image
from convnets.ml.reporting import as_mlflow_metrics
from convnets.parameters import SUBSET_NAMES, CatsVsDogsData, ParameterError

logger = logging.getLogger(__name__)


def _check_split_request(archive: ImageArchive, data: CatsVsDogsData) -> None:
    """Fail before any image is read when a subset cannot be filled from the archive.

    Allocates indices as ``make_subset`` does (each subset from its ``start``, skipping
    indices taken before) but without reading: a bound, since unreadable images are
    replaced by later indices.
    """
    for label in data.classes:
        ordered = sorted(archive.images.get(label, {}))
        taken: set[int] = set()
        for name in SUBSET_NAMES:
            subset = getattr(data.subsets, name)
            free = [index for index in ordered if index >= subset.start and index not in taken]
            taken.update(free[: subset.size])
            if len(free) >= subset.size:
                continue
            key = f"cats_vs_dogs.subsets.{name}"
            advice = (
                f"lower {key}.start (its '{label}' images run from index {ordered[0]} "
                f"to {ordered[-1]})"
                if ordered and subset.start > ordered[-1]
                else f"lower {key}.size (--params={key}.size=<n>) or use a larger archive"
            )
            raise ParameterError(
                f"The {name} subset asks for {subset.size} '{label}' images from index "
                f"{subset.start} on, but {archive.source} has only {len(free)} left there "
                f"(of {len(ordered)}): {advice}."
            )


def _is_check(result: object) -> bool:
    """Whether ``result`` is a check result as this module writes them (the file may not be)."""
    return (
        isinstance(result, dict)
        and result.get("action") in ("kept", "converted", "skipped")
        and isinstance(result.get("reason"), str)
    )


def _checked_image(
    archive: ImageArchive,
    member: str,
    data: CatsVsDogsData,
    known_checks: dict[str, dict[str, str]],
) -> tuple[dict[str, str], LazyFile | None]:
    """The check result for ``member`` and its lazily loaded content (None when skipped).

    A result remembered from an earlier run (same content identity, same policy) is
    reused without reading the image; otherwise the image is read and checked now.
    """
    non_rgb, max_pixels = data.non_rgb, data.max_image_pixels
    key = f"{archive.identity(member)}|non_rgb={non_rgb}|max_pixels={max_pixels}"
    if key in known_checks and _is_check(known_checks[key]):
        result = known_checks[key]
        if result["action"] == "skipped":
            return result, None
        return result, LazyFile(
            key, lambda: check_image(archive.read(member), non_rgb, max_pixels).content
        )
    try:
        content = archive.read(member)
    except UnreadableEntry as exc:  # this entry only; a broken archive fails when opened
        known_checks[key] = {"action": "skipped", "reason": str(exc)}
        return known_checks[key], None
    check = check_image(content, non_rgb, max_pixels)
    known_checks[key] = {"action": check.action, "reason": check.reason}
    if check.content is None:
        return known_checks[key], None
    content = check.content
    return known_checks[key], LazyFile(key, lambda: content)


def make_subset(
    archive: ImageArchive, data: CatsVsDogsData, known_checks: dict[str, dict[str, str]]
) -> tuple[pd.DataFrame, dict[str, LazyFile], pd.DataFrame, dict[str, dict[str, float]], dict]:
    """Ingestion: the split of the archive into train, validation and test subsets.

    For each class and each subset in order, takes the first ``size`` images whose
    index is at least ``start``, not already taken, and that pass ``check_image``
    (converted to RGB JPEG or skipped, as ``non_rgb`` says). A skipped image is
    replaced by the next valid index, so a split is deterministic. Check results are
    remembered by content identity (``known_checks``), so a re-run with unchanged
    inputs reads no image.

    Returns the manifest (file, label, split, source), the images to write as
    ``{subset}/{label}/{file}``, the report of skipped, converted and refused files,
    their counts as MLflow metrics, and the updated check results.
    """
    _check_split_request(archive, data)
    checks = dict(known_checks)
    rows, report, files = [], [], {}
    for member, reason in archive.refused:
        report.append({"source": member, "label": "", "action": "refused", "reason": reason})
    for label in data.classes:
        by_index = archive.images[label]
        ordered = sorted(by_index)
        taken: set[int] = set()
        for subset_name in SUBSET_NAMES:
            subset = getattr(data.subsets, subset_name)
            chosen = 0
            for index in ordered:
                if chosen == subset.size:
                    break
                if index < subset.start or index in taken:
                    continue
                taken.add(index)
                member = by_index[index]
                stopping.check()  # before each picture: nothing of the split is written yet
                result, content = _checked_image(archive, member, data, checks)
                if result["action"] != "kept":
                    log = logger.warning if result["action"] == "skipped" else logger.info
                    log("%s %s: %s", result["action"].capitalize(), member, result["reason"])
                    report.append({"source": member, "label": label, **result})
                if content is None:
                    continue
                file_name = f"{label}.{index}.jpg"
                files[f"{subset_name}/{label}/{file_name}"] = content
                rows.append(
                    {"file": file_name, "label": label, "split": subset_name, "source": member}
                )
                chosen += 1
            if chosen < subset.size:
                skipped = sum(1 for row in report if row["action"] == "skipped")
                raise ValueError(
                    f"Only {chosen} valid '{label}' images were left for the {subset_name} "
                    f"subset (wanted {subset.size}); {skipped} were skipped as "
                    "unreadable. Lower the subset sizes or repair the archive."
                )
    manifest = pd.DataFrame(rows, columns=["file", "label", "split", "source"])
    report_table = pd.DataFrame(report, columns=["source", "label", "action", "reason"])
    counts = report_table["action"].value_counts()
    metrics = as_mlflow_metrics(
        {
            f"{action}_images": counts.get(action, 0)
            for action in ("skipped", "converted", "refused")
        }
    )
    logger.info(
        "Split of %s: %s; %s",
        archive.source,
        manifest.groupby(["split", "label"]).size().to_dict(),
        {key: int(value["value"]) for key, value in metrics.items()},
    )
    return manifest, files, report_table, metrics, checks
