"""Exact k-nearest-neighbour distances and radius counts, with interchangeable backends.

Backends (all exact; they return the same numbers to float tolerance):

- ``torch``: brute force in chunks of query rows (bounded memory), on CPU or CUDA. Euclidean candidates are found
  with a float32 matrix product, then their distances are recomputed from coordinate differences in the input's
  precision, so results do not suffer the ``‖a‖² + ‖b‖² − 2ab`` cancellation.
- ``faiss``: ``IndexFlatL2`` / ``IndexFlat(METRIC_Linf)`` candidates (float32), refined the same way; needs
  ``pip install faiss-cpu`` (extra ``privlab[faiss]``).
- ``scipy``: ``cKDTree`` in float64; fast in low dimension only (k-d trees degrade to worse than brute force
  beyond a few tens of dimensions).

``backend="auto"`` uses scipy for ≤ 16 dimensions on the CPU and torch otherwise.

Distances are returned as float64 tensors on the CPU, sorted ascending, shape ``(n_query, k)``.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
import torch

from privlab.errors import ConfigError, PrivlabError

__all__ = ["Backend", "Metric", "count_within", "knn_distances", "resolve_backend"]

Backend = Literal["auto", "torch", "faiss", "scipy"]
Metric = Literal["euclidean", "chebyshev"]

_CHUNK_BYTES = 128 * 2**20  # distance block per chunk: bounds the extra memory of the torch backend
_MARGIN = 4  # extra float32 candidates refined exactly, so float32 near-ties cannot drop a true neighbour


def resolve_backend(backend: Backend, dim: int, device: torch.device | None = None) -> str:
    """The concrete backend ``auto`` stands for at this dimension and device (or ``backend`` itself, checked)."""
    if backend == "auto":
        if device is not None and device.type != "cpu":
            return "torch"
        return "scipy" if dim <= 16 else "torch"
    if backend not in ("torch", "faiss", "scipy"):
        raise ConfigError(f"unknown kNN backend {backend!r}; use auto, torch, faiss or scipy")
    if backend == "faiss" and importlib.util.find_spec("faiss") is None:
        raise PrivlabError("backend 'faiss' needs faiss: pip install faiss-cpu (or 'privlab[faiss]'), or use torch")
    return backend


def _chunk_rows(n_ref: int, itemsize: int = 4) -> int:
    return max(1, min(65536, _CHUNK_BYTES // max(1, n_ref * itemsize)))


def _pair_dist(q: torch.Tensor, r: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Exact distances between ``q (m, d)`` and candidates ``r (m, c, d)`` → ``(m, c)``, from coordinate differences."""
    diff = (r - q[:, None, :]).abs_()
    return diff.amax(dim=2) if metric == "chebyshev" else diff.square_().sum(dim=2).sqrt_()


def _refine(
    query: torch.Tensor, ref: torch.Tensor, cand: torch.Tensor, k: int, metric: Metric, self_offset: int | None
) -> torch.Tensor:
    """Recompute candidate distances exactly, drop self matches, keep the k smallest (sorted)."""
    out = []
    step = max(1, _CHUNK_BYTES // max(1, cand.shape[1] * query.shape[1] * query.element_size()))
    for s in range(0, query.shape[0], step):
        c = cand[s : s + step]
        d = _pair_dist(query[s : s + step], ref[c.clamp_min(0)], metric)
        d = d.masked_fill(c < 0, float("inf"))
        if self_offset is not None:
            rows = torch.arange(s, s + len(c), device=c.device)[:, None] + self_offset
            d = d.masked_fill(c == rows, float("inf"))
        out.append(d.sort(dim=1).values[:, :k])
    return torch.cat(out)


def _knn_torch(query: torch.Tensor, ref: torch.Tensor, k: int, metric: Metric, exclude_self: bool) -> torch.Tensor:
    n_ref = ref.shape[0]
    kk = min(n_ref, k + _MARGIN + int(exclude_self))
    out = []
    if metric == "euclidean":
        ref32 = ref.float()
        ref_sq = ref32.square().sum(1)
    chunk = _chunk_rows(n_ref)
    for s in range(0, query.shape[0], chunk):
        q = query[s : s + chunk]
        if metric == "euclidean":
            q32 = q.float()
            d2 = torch.addmm(ref_sq[None, :] + q32.square().sum(1)[:, None], q32, ref32.T, alpha=-2.0)
            if exclude_self:
                d2[torch.arange(len(q)), torch.arange(s, s + len(q))] = float("inf")
            cand = d2.topk(kk, dim=1, largest=False).indices
            out.append(_refine(q, ref, cand, k, metric, s if exclude_self else None))
        else:
            d = torch.cdist(q, ref, p=float("inf"))
            if exclude_self:
                d[torch.arange(len(q)), torch.arange(s, s + len(q))] = float("inf")
            out.append(d.topk(k, dim=1, largest=False).values)
    return torch.cat(out)


def _knn_faiss(query: torch.Tensor, ref: torch.Tensor, k: int, metric: Metric, exclude_self: bool) -> torch.Tensor:
    import faiss

    d = ref.shape[1]
    index = faiss.IndexFlatL2(d) if metric == "euclidean" else faiss.IndexFlat(d, faiss.METRIC_Linf)
    index.add(np.ascontiguousarray(ref.cpu().numpy(), dtype=np.float32))
    kk = min(ref.shape[0], k + _MARGIN + int(exclude_self))
    _, idx = index.search(np.ascontiguousarray(query.cpu().numpy(), dtype=np.float32), kk)
    cand = torch.from_numpy(idx).to(query.device)
    return _refine(query, ref, cand, k, metric, 0 if exclude_self else None)


def _knn_scipy(query: torch.Tensor, ref: torch.Tensor, k: int, metric: Metric, exclude_self: bool) -> torch.Tensor:
    from scipy.spatial import cKDTree

    tree = cKDTree(ref.cpu().numpy().astype(np.float64, copy=False))
    p = 2 if metric == "euclidean" else np.inf
    kk = k + int(exclude_self)
    dist, _ = tree.query(query.cpu().numpy().astype(np.float64, copy=False), k=kk, p=p)
    dist = np.asarray(dist, dtype=np.float64).reshape(query.shape[0], kk)
    # Self-queries: the point itself is at distance 0, always first; dropping one 0 leaves the right multiset
    # of distances even when duplicates tie with it.
    return torch.from_numpy(dist[:, 1:] if exclude_self else dist)


def knn_distances(
    query: torch.Tensor,
    ref: torch.Tensor | None = None,
    k: int = 3,
    *,
    metric: Metric = "euclidean",
    backend: Backend = "auto",
) -> torch.Tensor:
    """Distances from each query row to its ``k`` nearest rows of ``ref`` (sorted ascending).

    Args:
        query: ``(n, d)`` points.
        ref: ``(m, d)`` reference points; ``None`` means ``query`` itself with each point's own match excluded.
        k: number of neighbours (``k ≤ m``, or ``k ≤ n − 1`` for self-queries).
        metric: ``euclidean`` (L2) or ``chebyshev`` (max-norm, L∞).
        backend: ``auto``, ``torch``, ``faiss`` or ``scipy`` (see the module docstring).

    Returns:
        float64 CPU tensor ``(n, k)``.
    """
    exclude_self = ref is None
    ref_t = query if ref is None else ref
    if query.ndim != 2 or ref_t.ndim != 2 or query.shape[1] != ref_t.shape[1]:
        raise ConfigError(f"knn: need (n, d) and (m, d) arrays, got {tuple(query.shape)} and {tuple(ref_t.shape)}")
    limit = ref_t.shape[0] - int(exclude_self)
    if not 1 <= k <= limit:
        raise ConfigError(f"knn: k = {k} must be between 1 and {limit} (the number of reference points)")
    name = resolve_backend(backend, query.shape[1], query.device)
    fn = {"torch": _knn_torch, "faiss": _knn_faiss, "scipy": _knn_scipy}[name]
    with torch.no_grad():
        return fn(query, ref_t, k, metric, exclude_self).to("cpu", torch.float64)


def count_within(
    points: torch.Tensor, radii: torch.Tensor, *, metric: Metric = "chebyshev", backend: Backend = "auto"
) -> torch.Tensor:
    """For each row ``i``: the number of other rows ``j ≠ i`` with ``dist(p_i, p_j) < radii[i]`` (strictly).

    Args:
        points: ``(n, d)``.
        radii: ``(n,)`` non-negative radii (a zero radius counts nothing).
        metric: ``chebyshev`` (KSG's max-norm) or ``euclidean``.
        backend: ``scipy`` uses ``cKDTree.query_ball_point``; any other value uses chunked torch brute force.

    Returns:
        int64 CPU tensor ``(n,)``.
    """
    name = resolve_backend(backend, points.shape[1], points.device)
    r = radii.to(torch.float64).cpu()
    if name == "scipy":
        from scipy.spatial import cKDTree

        pts = points.cpu().numpy().astype(np.float64, copy=False)
        tree = cKDTree(pts)
        strict = np.nextafter(r.numpy(), 0.0)  # query_ball_point counts ≤ r; this makes it < r
        counts = tree.query_ball_point(pts, strict, p=2 if metric == "euclidean" else np.inf, return_length=True)
        counts = torch.from_numpy(np.asarray(counts, dtype=np.int64)) - 1  # minus the point itself
        return torch.where(r > 0, counts, torch.zeros_like(counts))
    p = 2.0 if metric == "euclidean" else float("inf")
    pts = points.to(torch.float64)
    rr = r.to(pts.device)
    out = []
    chunk = _chunk_rows(pts.shape[0], 8)
    with torch.no_grad():
        for s in range(0, pts.shape[0], chunk):
            # exact differences (no ‖a‖²+‖b‖²−2ab shortcut): the strict '<' at the radius must match the kNN distance
            d = torch.cdist(pts[s : s + chunk], pts, p=p, compute_mode="donot_use_mm_for_euclid_dist")
            c = (d < rr[s : s + chunk, None]).sum(1) - (rr[s : s + chunk] > 0).long()  # the point itself (d = 0)
            out.append(c.cpu())
    return torch.cat(out)
