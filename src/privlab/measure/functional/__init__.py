"""The maths of measurements as pure functions on tensors (no registries, no I/O)."""

from privlab.measure.functional.knn import count_within, knn_distances
from privlab.measure.functional.mi_gaussian import gaussian_mi
from privlab.measure.functional.mi_knn_kl import joint_and_product_split, knn_kl_divergence
from privlab.measure.functional.mi_ksg import ksg_mi

__all__ = ["count_within", "gaussian_mi", "joint_and_product_split", "knn_distances", "knn_kl_divergence", "ksg_mi"]
