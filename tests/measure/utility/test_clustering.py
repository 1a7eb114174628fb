"""Clustering measurements against brute force and known answers."""

import itertools

import numpy as np
import pytest

from privlab.errors import ConfigError
from privlab.measure.utility.clustering import confusion_matrix, hungarian_accuracy, kmeans_classifier, majority_mapping


def test_hungarian_matches_brute_force_over_all_permutations():
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = rng.integers(0, 4, 60)
        pred = np.where(rng.random(60) < 0.6, (truth + 1) % 4, rng.integers(0, 4, 60))
        brute = max(np.mean(np.array(perm)[pred] == truth) for perm in itertools.permutations(range(4)))
        acc, mapping = hungarian_accuracy(pred, truth, 4, 4)
        assert acc == pytest.approx(brute)
        assert sorted(mapping.values()) == [0, 1, 2, 3]


def test_more_clusters_than_classes_count_unmatched_clusters_wrong():
    pred = np.array([0, 1, 2, 2])
    truth = np.array([0, 0, 1, 1])
    assert hungarian_accuracy(pred, truth, 3, 2)[0] == pytest.approx(0.75)


def test_confusion_and_majority_mapping():
    cm = confusion_matrix([0, 0, 1, 2], [1, 1, 0, 0], 4, 2)
    assert cm.tolist() == [[0, 2], [1, 0], [1, 0], [0, 0]]
    mapping = majority_mapping([0, 0, 1, 2], [1, 1, 0, 0], 4, 2)
    assert mapping.tolist() == [1, 0, 0, 0]  # empty cluster 3 → most frequent label overall (0: 2 vs 1: 2 → 0)
    with pytest.raises(ConfigError, match="same length"):
        confusion_matrix([0, 1], [0])


def test_kmeans_on_separated_blobs_is_perfect_even_with_flipped_labels():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    y = np.repeat(np.arange(3), 100)
    x = centres[y] + rng.normal(size=(300, 3))
    noisy = np.where(rng.random(300) < 0.3, rng.integers(0, 3, 300), y)  # 30 % label noise: majority survives
    xt = centres[np.arange(3).repeat(10)] + rng.normal(size=(30, 3))
    r = kmeans_classifier(x, noisy, xt, np.arange(3).repeat(10), num_clusters=3, num_classes=3, seed=0)
    assert r.accuracy == 1.0 and r.hungarian_accuracy == 1.0
    assert np.asarray(r.confusion).sum() == 30
    with pytest.raises(ConfigError, match="at least 10"):
        kmeans_classifier(x[:5], y[:5], xt, np.zeros(30, int), num_clusters=10)
