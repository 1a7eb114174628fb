"""How good an encoder's features are: linear-probe accuracy and weighted-kNN accuracy.

- :func:`extract_features`: frozen encoder → ``(N, D)`` features (eval mode, no gradient).
- :func:`linear_probe_accuracy`: a multinomial logistic regression (scikit-learn, L-BFGS) on standardised
  features of a training set, accuracy on a test set. (The original TUE linear probe trained ``Linear(512, C)`` with
  Adam for 100 epochs on augmented images; on frozen features without augmentation both fit the same model class.)
- :func:`knn_accuracy`: the weighted-kNN monitor of SimCLR/TUE: cosine similarity to a feature bank, the ``k``
  nearest vote with weight ``exp(s/τ)`` (k = 200, τ = 0.5 in the originals; ``k`` is capped at the bank size).

Accuracies are fractions in [0, 1].

Example:
    >>> import torch
    >>> bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> knn_accuracy(bank, labels, torch.tensor([[1.0, 0.05], [0.05, 1.0]]), torch.tensor([0, 1]), k=2)
    1.0
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from privlab.data.base import LabelledImages
from privlab.errors import ConfigError

__all__ = ["extract_features", "knn_accuracy", "knn_predict", "linear_probe_accuracy"]


@torch.no_grad()
def extract_features(
    encoder: nn.Module, data: LabelledImages, *, device: torch.device | str = "cpu", batch_size: int = 512
) -> torch.Tensor:
    """Features ``(N, D)`` (float32, on CPU) of every image of ``data`` (in [0, 1]) through ``encoder`` in eval mode."""
    was = encoder.training
    encoder.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x, _ = data.batch(torch.arange(i, min(i + batch_size, len(data))))
        out.append(encoder(x.to(device)).flatten(1).float().cpu())
    encoder.train(was)
    return torch.cat(out) if out else torch.empty(0, 0)


def knn_predict(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    *,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.5,
    chunk: int = 1024,
) -> torch.Tensor:
    """Weighted-kNN class predictions ``(M,)`` of ``queries`` ``(M, D)`` against ``bank`` ``(N, D)``.

    Votes: each of the ``min(k, N)`` nearest bank rows by cosine similarity ``s`` adds ``exp(s / temperature)`` to its
    class; the class with the largest sum wins.
    """
    if bank.shape[0] == 0 or queries.shape[0] == 0:
        raise ConfigError("kNN needs a non-empty feature bank and query set")
    c = int(num_classes if num_classes is not None else int(bank_labels.max()) + 1)
    kk = min(k, bank.shape[0])
    b = F.normalize(bank.float(), dim=1)
    preds = []
    for i in range(0, queries.shape[0], chunk):
        q = F.normalize(queries[i : i + chunk].float(), dim=1)
        sim, idx = (q @ b.t()).topk(kk, dim=1)
        votes = torch.zeros(q.shape[0], c, dtype=sim.dtype)
        votes.scatter_add_(1, bank_labels[idx].long(), torch.exp(sim / temperature))
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.5,
) -> float:
    """Accuracy (fraction) of :func:`knn_predict` on labelled queries."""
    pred = knn_predict(bank, bank_labels, queries, num_classes=num_classes, k=k, temperature=temperature)
    return float((pred == query_labels.long()).float().mean())


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    c: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test accuracy (fraction) of a logistic-regression probe fitted on standardised training features.

    Args:
        train_features, test_features: ``(N, D)`` and ``(M, D)`` frozen-encoder features.
        train_labels, test_labels: int labels ``(N,)``, ``(M,)``.
        c: inverse L2 regularisation strength of scikit-learn's ``LogisticRegression``.
        max_iter: L-BFGS iterations.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xtr = train_features.double().numpy()
    xte = test_features.double().numpy()
    ytr = train_labels.numpy()
    if len(np.unique(ytr)) < 2:
        raise ConfigError("linear probe needs at least two classes in its training labels")
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(xtr), ytr)
    return float((clf.predict(scaler.transform(xte)) == test_labels.numpy()).mean())
