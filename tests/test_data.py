import gzip
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pytest

from studyflow import paths
from tasks.data import DatasetError, load_dataset, manifest, subset, validation_split

MNIST_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"


def test_mnist_loads_whole_scaled_and_verified():
    dataset = load_dataset("mnist")
    assert dataset.train_images.shape == (60000, 28, 28)
    assert dataset.test_images.shape == (10000, 28, 28)
    assert dataset.train_images.dtype == np.float32
    assert dataset.train_images.min() == 0.0 and dataset.train_images.max() == 1.0
    assert sorted(np.unique(dataset.train_labels)) == list(range(10))
    assert len(dataset.digest) == 64


def test_fashion_mnist_loads():
    dataset = load_dataset("fashion-mnist")
    assert dataset.train_images.shape == (60000, 28, 28)
    assert dataset.digest != load_dataset("mnist").digest


def _copy_dataset(target_root, name="mnist"):
    shutil.copytree(paths.PACKAGE_ROOT / "data" / name, target_root / name)
    return target_root / name


def test_corrupt_byte_is_caught_naming_file_and_checksums(tmp_path, monkeypatch):
    folder = _copy_dataset(tmp_path)
    labels = folder / MNIST_TRAIN_LABELS
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] ^= 0x01  # one flipped bit in one label
    labels.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setenv("STUDYFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDYFLOW_CACHE_DIR", str(tmp_path / "cache"))
    expected = manifest()["mnist"]["files"]["train_labels"]["sha256"]
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist")
    message = str(caught.value)
    assert MNIST_TRAIN_LABELS in message and expected in message and "corrupt" in message


def test_truncated_gzip_is_caught(tmp_path, monkeypatch):
    folder = _copy_dataset(tmp_path)
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:50_000])
    monkeypatch.setenv("STUDYFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDYFLOW_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist")


def test_changed_file_is_verified_again_despite_the_cache(tmp_path, monkeypatch):
    folder = _copy_dataset(tmp_path)
    monkeypatch.setenv("STUDYFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDYFLOW_CACHE_DIR", str(tmp_path / "cache"))
    load_dataset("mnist")  # fills the cache
    labels = folder / MNIST_TRAIN_LABELS
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] ^= 0x02
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DatasetError, match="corrupt"):
        load_dataset("mnist")


def test_missing_file_without_mirror_names_file_and_expected_checksum(tmp_path, monkeypatch):
    folder = _copy_dataset(tmp_path)
    (folder / MNIST_TRAIN_LABELS).unlink()
    monkeypatch.setenv("STUDYFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDYFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STUDYFLOW_DATA_MIRROR", "http://127.0.0.1:9/")  # nothing listens there
    expected = manifest()["mnist"]["files"]["train_labels"]["sha256"]
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist")
    assert MNIST_TRAIN_LABELS in str(caught.value) and expected in str(caught.value)
    assert "missing" in str(caught.value)


def test_missing_file_is_downloaded_from_a_mirror_and_verified(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    shutil.copytree(paths.PACKAGE_ROOT / "data" / "mnist", mirror / "mnist")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        local = tmp_path / "local"
        local.mkdir()
        monkeypatch.setenv("STUDYFLOW_DATA_DIR", str(local))
        monkeypatch.setenv("STUDYFLOW_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("STUDYFLOW_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
        dataset = load_dataset("mnist")
    finally:
        server.shutdown()
    assert dataset.train_images.shape == (60000, 28, 28)
    assert (local / "mnist" / MNIST_TRAIN_LABELS).exists()


def test_validation_split_is_seeded_stratified_and_disjoint():
    dataset = subset(load_dataset("mnist"), 5000, 100, seed=3)
    indices = np.arange(len(dataset.train_labels))
    first = validation_split(indices, dataset.train_labels, 0.1, seed=7)
    again = validation_split(indices, dataset.train_labels, 0.1, seed=7)
    other = validation_split(indices, dataset.train_labels, 0.1, seed=8)
    assert len(first.val_labels) == 500 and len(first.train_labels) == 4500
    assert np.array_equal(first.val_images, again.val_images)
    assert not np.array_equal(first.val_images, other.val_images)
    assert not set(first.val_images) & set(first.train_images)
    shares = np.bincount(first.val_labels, minlength=10) / np.bincount(dataset.train_labels, minlength=10)
    assert np.allclose(shares, 0.1, atol=0.01)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_validation_fraction_outside_open_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match="fraction"):
        validation_split(np.zeros(10), np.zeros(10), fraction, 0)


def test_subset_is_seeded_and_keeps_the_digest():
    full = load_dataset("mnist")
    small = subset(full, 1000, 200, seed=1)
    assert small.train_images.shape == (1000, 28, 28) and small.test_images.shape == (200, 28, 28)
    assert np.array_equal(small.train_labels, subset(full, 1000, 200, seed=1).train_labels)
    assert small.digest == full.digest
