"""Verified loading of MNIST and Fashion-MNIST, the validation split and profile subsets.

Raw files are immutable: every load checks the sha256 of the decompressed bytes against
`data/manifest.json`, and the decoded arrays are cached only after that check passed, keyed by the
checksum and by the source file's size and mtime (so an edited file is verified again).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from studyflow import paths
from studyflow.errors import DatasetError
from tasks.idx import IdxFormatError, parse_idx

DATASET_NAMES = ("mnist", "fashion-mnist")
_PARTS = ("train_images", "train_labels", "test_images", "test_labels")
_DOWNLOAD_TIMEOUT_S = 30
# The range a loaded dataset's pixels are in: the networks (parts 3, 4, 6) train on it as it is; PCA
# and the perceptron rescale to their config's `pixel_range`.
LOADED_PIXEL_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class Dataset:
    """A dataset with pixels scaled to [0, 1] (float32) and integer labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    digest: str  # sha256 over the four files' checksums: names exactly the data a run used

    @property
    def short_digest(self) -> str:
        return self.digest[:16]


@dataclass(frozen=True)
class Split:
    """Training data divided into the part that trains and the part that selects models."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray


@lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((paths.PACKAGE_ROOT / "data" / "manifest.json").read_text())


def _check_name(name: str) -> dict:
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    return manifest()[name]


def dataset_digest(name: str) -> str:
    """The digest that identifies a dataset: sha256 of its four files' manifest checksums."""
    entry = _check_name(name)
    joined = "".join(entry["files"][part]["sha256"] for part in _PARTS)
    return hashlib.sha256(joined.encode()).hexdigest()


def _download(name: str, file_name: str, target: Path) -> str | None:
    """Fetch a missing file from the mirrors; returns the error text if every mirror failed."""
    override = os.environ.get("STUDYFLOW_DATA_MIRROR")
    bases = [f"{override.rstrip('/')}/{name}/"] if override else manifest()[name]["mirrors"]
    errors = []
    for base in bases:
        url = base + file_name
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(payload)
        partial.replace(target)
        return None
    return "; ".join(errors)


def _read_verified(name: str, part: str) -> np.ndarray:
    spec = manifest()[name]["files"][part]
    source = paths.data_dir() / name / spec["file"]
    expected = spec["sha256"]
    if not source.exists():
        failure = _download(name, spec["file"], source)
        if failure is not None:
            raise DatasetError(
                f"dataset file {source} is missing (expected sha256 {expected}, actual: no file) "
                f"and could not be downloaded: {failure}"
            )
    try:
        raw = gzip.decompress(source.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(
            f"dataset file {source} is not a readable gzip file ({exc}); expected sha256 of the "
            f"decompressed bytes {expected}"
        ) from exc
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise DatasetError(
            f"dataset file {source} is corrupt: sha256 of its decompressed bytes is {actual}, expected {expected}"
        )
    try:
        array = parse_idx(raw, str(source))
    except IdxFormatError as exc:
        raise DatasetError(str(exc)) from exc
    if list(array.shape) != spec["shape"]:
        raise DatasetError(f"dataset file {source}: shape {array.shape}, expected {spec['shape']}")
    return array


def _verified_cache(name: str, part: str) -> Path:
    """The cached array of one verified file: verified (and cached) again only if the source file
    changed since, by its size and mtime."""
    spec = manifest()[name]["files"][part]
    source = paths.data_dir() / name / spec["file"]
    cache_file = paths.data_cache_dir() / f"{name}-{part}-{spec['sha256'][:16]}.npy"
    stamp_file = cache_file.with_suffix(".json")
    if source.exists() and cache_file.exists() and stamp_file.exists():
        stat = source.stat()
        stamp = json.loads(stamp_file.read_text())
        if stamp == {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
            return cache_file
    array = _read_verified(name, part)
    stat = source.stat()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache_file, array)
    stamp_file.write_text(json.dumps({"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return cache_file


def _load_part(name: str, part: str) -> np.ndarray:
    """One verified uint8 array, from the cache when the source file has not changed since."""
    return np.load(_verified_cache(name, part))


def _scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], in one allocation (MNIST's float images are large)."""
    scaled = pixels.astype(np.float32)
    scaled *= np.float32(1.0 / 255.0)
    return scaled


def rescaled(images: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
    """Images in [0, 1] mapped linearly onto [low, high], in the images' float dtype.

    A part scales only the images it uses (a sample, a digit pair), not the whole dataset."""
    low, high = pixel_range
    return images * images.dtype.type(high - low) + images.dtype.type(low)


def check_dataset(name: str) -> None:
    """Every file of the dataset present and matching its manifest checksum (a DatasetError naming
    the file if not), without loading it: once verified, the cache's stamp (source size and mtime)
    stands for the check."""
    _check_name(name)
    for part in _PARTS:
        _verified_cache(name, part)


def load_dataset(name: str) -> Dataset:
    """The whole dataset, verified against the manifest, pixels scaled to [0, 1]."""
    _check_name(name)
    arrays = {part: _load_part(name, part) for part in _PARTS}
    return Dataset(
        name=name,
        train_images=_scaled(arrays["train_images"]),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=_scaled(arrays["test_images"]),
        test_labels=arrays["test_labels"].astype(np.int64),
        digest=dataset_digest(name),
    )


def subset(dataset: Dataset, train_size: int | None, test_size: int | None, seed: int) -> Dataset:
    """A seeded random subset (None keeps all); the digest still names the full source data."""
    rng = np.random.default_rng(seed)

    def pick(count: int | None, total: int) -> np.ndarray:
        if count is None or count >= total:
            return np.arange(total)
        return np.sort(rng.choice(total, size=count, replace=False))

    train_index = pick(train_size, len(dataset.train_labels))
    test_index = pick(test_size, len(dataset.test_labels))
    return Dataset(
        name=dataset.name,
        train_images=dataset.train_images[train_index],
        train_labels=dataset.train_labels[train_index],
        test_images=dataset.test_images[test_index],
        test_labels=dataset.test_labels[test_index],
        digest=dataset.digest,
    )


def validation_split(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> Split:
    """Carve a seeded, class-stratified validation part out of the training data."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    from sklearn.model_selection import train_test_split

    train_images, val_images, train_labels, val_labels = train_test_split(
        images, labels, test_size=fraction, random_state=seed, stratify=labels
    )
    return Split(train_images, train_labels, val_images, val_labels)
