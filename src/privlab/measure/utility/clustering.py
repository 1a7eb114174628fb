"""Clustering measurements: confusion matrices, Hungarian-matched accuracy, k-means with majority relabelling.

* :func:`hungarian_accuracy` — the usual unsupervised-clustering accuracy: the one-to-one mapping of clusters to
  classes that maximises agreement (``scipy.optimize.linear_sum_assignment``), then the fraction of points whose
  mapped cluster equals their class. Clusters left without a class (more clusters than classes) count as wrong.
* :func:`majority_mapping` — each cluster takes the most frequent (possibly privatised) label among its members,
  the LDP-MNIST study's idea for labelling k-means clusters.
* :func:`kmeans_classifier` — scikit-learn ``KMeans`` fitted on (privatised) training images, clusters labelled by
  majority of the training labels given, accuracy measured on separate test images and their true labels.

Example:
    >>> import numpy as np
    >>> pred = np.array([2, 2, 0, 0, 1, 1])
    >>> truth = np.array([0, 0, 1, 1, 2, 2])
    >>> hungarian_accuracy(pred, truth)[0]
    1.0
    >>> majority_mapping(np.array([0, 0, 0, 1]), np.array([3, 3, 1, 2]), 2, 4).tolist()
    [3, 2]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from privlab.errors import ConfigError

__all__ = ["KMeansResult", "confusion_matrix", "hungarian_accuracy", "kmeans_classifier", "majority_mapping"]


def _np_int(a: Any, what: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a 1-d array of integers, got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ConfigError(f"{what} must be ≥ 0, got minimum {arr.min()}")
    return arr.astype(np.int64, copy=False)


def confusion_matrix(
    pred: Any, truth: Any, num_clusters: int | None = None, num_classes: int | None = None
) -> np.ndarray:
    """Counts ``(num_clusters, num_classes)``: entry (i, j) = points in cluster i with class j."""
    p, t = _np_int(pred, "pred"), _np_int(truth, "truth")
    if p.shape != t.shape:
        raise ConfigError(f"pred and truth must have the same length, got {p.shape[0]} and {t.shape[0]}")
    k = int(num_clusters if num_clusters is not None else (p.max() + 1 if p.size else 1))
    c = int(num_classes if num_classes is not None else (t.max() + 1 if t.size else 1))
    if p.size and (p.max() >= k or t.max() >= c):
        raise ConfigError(f"cluster ids must be < {k} and classes < {c}")
    return np.bincount(p * c + t, minlength=k * c).reshape(k, c)


def hungarian_accuracy(
    pred: Any, truth: Any, num_clusters: int | None = None, num_classes: int | None = None
) -> tuple[float, dict[int, int]]:
    """Best one-to-one cluster→class matching: ``(accuracy in [0, 1], {cluster: class})``."""
    from scipy.optimize import linear_sum_assignment

    cm = confusion_matrix(pred, truth, num_clusters, num_classes)
    n = int(cm.sum())
    if n == 0:
        raise ConfigError("cannot measure accuracy on zero points")
    rows, cols = linear_sum_assignment(cm, maximize=True)
    return float(cm[rows, cols].sum()) / n, {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def majority_mapping(clusters: Any, labels: Any, num_clusters: int, num_classes: int) -> np.ndarray:
    """``(num_clusters,)`` class of each cluster: the most frequent label among its members (ties: lowest class).

    Empty clusters take the most frequent label overall.
    """
    cm = confusion_matrix(clusters, labels, num_clusters, num_classes)
    mapping = cm.argmax(1)
    empty = cm.sum(1) == 0
    if empty.any():
        mapping[empty] = int(cm.sum(0).argmax())
    return mapping


@dataclass
class KMeansResult:
    """k-means classifier result: test accuracy (majority mapping) and Hungarian accuracy, with the mapping."""

    accuracy: float
    hungarian_accuracy: float | None
    mapping: list[int]
    inertia: float
    confusion: list[list[int]] = field(default_factory=list)


def kmeans_classifier(
    train_x: Any,
    train_labels: Any,
    test_x: Any,
    test_labels: Any,
    *,
    num_clusters: int = 10,
    num_classes: int = 10,
    seed: int = 0,
    n_init: int = 3,
    max_iter: int = 300,
) -> KMeansResult:
    """Fit k-means on ``train_x``, label clusters by majority of ``train_labels``, score on the test set.

    Args:
        train_x: ``(N, ...)`` training images (privatised); flattened per row.
        train_labels: ``(N,)`` labels used for the majority vote (privatised or true).
        test_x: ``(M, ...)`` test images in the same form as the training images (no noise).
        test_labels: ``(M,)`` true test labels.
        num_clusters: k (the original used 10).
        num_classes: number of classes.
        seed: ``random_state`` of scikit-learn's ``KMeans``.
        n_init, max_iter: passed to ``KMeans``.

    Returns:
        :class:`KMeansResult`; ``hungarian_accuracy`` is given when ``num_clusters == num_classes``.
    """
    from sklearn.cluster import KMeans

    def flat(a: Any) -> np.ndarray:
        arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        return arr.reshape(arr.shape[0], -1).astype(np.float32, copy=False)

    xtr, xte = flat(train_x), flat(test_x)
    if xtr.shape[0] < num_clusters:
        raise ConfigError(f"k-means needs at least {num_clusters} training images, got {xtr.shape[0]}")
    km = KMeans(n_clusters=num_clusters, n_init=n_init, max_iter=max_iter, random_state=seed)
    train_clusters = km.fit_predict(xtr)
    mapping = majority_mapping(train_clusters, train_labels, num_clusters, num_classes)
    test_clusters = km.predict(xte)
    truth = _np_int(test_labels, "test_labels")
    acc = float((mapping[test_clusters] == truth).mean())
    hung = None
    if num_clusters == num_classes:
        hung = hungarian_accuracy(test_clusters, truth, num_clusters, num_classes)[0]
    cm = confusion_matrix(test_clusters, truth, num_clusters, num_classes)
    return KMeansResult(acc, hung, mapping.tolist(), float(km.inertia_), cm.tolist())
