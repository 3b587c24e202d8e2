"""Study part 1: a 2-D PCA map of MNIST and the linear separability of every digit pair."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

from tasks.data import rescaled

DIGITS = tuple(range(10))
ELLIPSE_LEVEL = 0.95


@dataclass(frozen=True)
class PcaMap:
    sample_images: np.ndarray  # (n, 784) flattened pixels of the seeded sample, scaled to pixel_range
    sample_labels: np.ndarray
    projection: np.ndarray  # (n, 2)
    explained_variance_ratio: tuple[float, float]
    digit_table: pd.DataFrame
    pixel_range: tuple[float, float]


def sample_for_pca(
    images: np.ndarray, labels: np.ndarray, sample_size: int, seed: int, pixel_range: tuple[float, float]
):
    """A seeded random sample of the images, flattened to vectors, pixels scaled to `pixel_range`."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(labels), size=min(sample_size, len(labels)), replace=False)
    return rescaled(images[index].reshape(len(index), -1), pixel_range), labels[index]


def project(sample_images: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    return PCA(n_components=n_components, random_state=seed).fit_transform(sample_images)


def digit_table(projection: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per digit: centroid and variance along each principal component, and the sample count."""
    rows = []
    for digit in DIGITS:
        points = projection[labels == digit]
        rows.append(
            {
                "digit": digit,
                "centroid_pc1": points[:, 0].mean(),
                "centroid_pc2": points[:, 1].mean(),
                "variance_pc1": points[:, 0].var(ddof=1),
                "variance_pc2": points[:, 1].var(ddof=1),
                "count": len(points),
            }
        )
    return pd.DataFrame(rows)


def confidence_ellipse(points: np.ndarray, level: float = ELLIPSE_LEVEL) -> tuple[float, float, float]:
    """Width, height and angle (degrees) of the `level` ellipse of a 2-D Gaussian fit (chi-square, 2 dof)."""
    covariance = np.cov(points, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = eigenvalues.argsort()[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    scale = chi2.ppf(level, df=2)
    width, height = 2 * np.sqrt(scale * eigenvalues)
    angle = np.degrees(np.arctan2(eigenvectors[1, 0], eigenvectors[0, 0]))
    return float(width), float(height), float(angle)


def oriented(pca: PCA, projection: np.ndarray) -> np.ndarray:
    """The projection with each component's sign fixed: its largest loading (by magnitude) positive.

    A component's sign is arbitrary; this convention (scikit-learn's own since 1.5) does not depend on
    the sample or the solver, so the map's orientation does not change between versions or runs."""
    largest = pca.components_[np.arange(len(pca.components_)), np.abs(pca.components_).argmax(axis=1)]
    return projection * np.sign(largest)


def build_pca_map(
    images: np.ndarray, labels: np.ndarray, sample_size: int, seed: int, pixel_range: tuple[float, float]
) -> PcaMap:
    sample_images, sample_labels = sample_for_pca(images, labels, sample_size, seed, pixel_range)
    pca = PCA(n_components=2, random_state=seed)
    projection = oriented(pca, pca.fit_transform(sample_images))
    ratio = pca.explained_variance_ratio_
    return PcaMap(
        sample_images,
        sample_labels,
        projection,
        (float(ratio[0]), float(ratio[1])),
        digit_table(projection, sample_labels),
        tuple(pixel_range),
    )


def pair_accuracies(
    features: np.ndarray, labels: np.ndarray, holdout_fraction: float, max_iter: int, seed: int
) -> pd.DataFrame:
    """LinearSVC per digit pair, scored on a held-out, stratified part of that pair's samples."""
    rows = []
    for digit_a, digit_b in itertools.combinations(DIGITS, 2):
        mask = (labels == digit_a) | (labels == digit_b)
        train_x, test_x, train_y, test_y = train_test_split(
            features[mask], labels[mask], test_size=holdout_fraction, random_state=seed, stratify=labels[mask]
        )
        classifier = LinearSVC(max_iter=max_iter, random_state=seed).fit(train_x, train_y)
        rows.append({"digit_a": digit_a, "digit_b": digit_b, "accuracy": classifier.score(test_x, test_y)})
    return pd.DataFrame(rows)


def separability_by_dimension(
    pca_map: PcaMap, dimensions: list[int], holdout_fraction: float, max_iter: int, seed: int
) -> dict[int, pd.DataFrame]:
    """Pair accuracies in 2-D (the map itself) and in each further PCA dimension asked for."""
    results = {2: pair_accuracies(pca_map.projection, pca_map.sample_labels, holdout_fraction, max_iter, seed)}
    for n_components in dimensions:
        if n_components == 2:
            continue
        features = project(pca_map.sample_images, n_components, seed)
        results[n_components] = pair_accuracies(features, pca_map.sample_labels, holdout_fraction, max_iter, seed)
    return results
