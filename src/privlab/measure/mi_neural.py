"""Neural variational lower bounds on I(X; Z) registered in :data:`privlab.measure.mi.MI_ESTIMATORS`.

``infonce``, ``nwj``, ``mine`` and ``smile`` (the maths and the protocol: :mod:`privlab.measure.functional.mi_neural`).
Each trains a concatenation MLP critic on 70 % of the rows (seeded split), early-stops on the bound over the other
30 % and returns that held-out bound, in nats. Settings go through ``estimate_mi(..., options={...})``:
``max_epochs`` (alias ``epochs``, 100), ``batch_size`` (256), ``lr`` (5e-4), ``hidden`` (256), ``layers`` (2),
``test_fraction`` (0.3), ``patience`` (10), ``tau`` (smile, 5) and ``ema`` (mine, 0.01). The third element of each
estimator's return value (``MIResult.details``) holds the training facts; for ``infonce`` ``ceiling`` is ``log B``,
the most the estimate can ever be, and a :class:`RuntimeWarning` says so when the estimate comes within 10 % of it.

Example:
    >>> import torch
    >>> import privlab.measure.mi_neural  # registers the estimators
    >>> from privlab.measure.mi import estimate_mi
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(1000, 1, generator=g)
    >>> z = 0.8 * x + 0.6 * torch.randn(1000, 1, generator=g)
    >>> r = estimate_mi(x, z, "nwj", options={"max_epochs": 20, "batch_size": 64, "hidden": 32}, diagnose=False)
    >>> r.details["n_test"], 0.0 < r.nats < 0.8
    (300, True)
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from privlab.measure.functional.mi_neural import make_config, neural_mi
from privlab.measure.mi import MI_ESTIMATORS

__all__ = ["CEILING_WARN_FRACTION"]

CEILING_WARN_FRACTION = 0.9  # infonce: warn when the estimate is ≥ 90 % of log B


def _run(
    bound: str, x: torch.Tensor, z: torch.Tensor, generator: torch.Generator, device: torch.device | None, options: Any
) -> tuple[float, int, dict[str, Any]]:
    cfg = make_config(bound, **options)
    res = neural_mi(x, z, cfg, generator=generator, device=device)
    info = res.info()
    if res.ceiling is not None and res.nats >= CEILING_WARN_FRACTION * res.ceiling:
        warnings.warn(
            f"infonce estimate {res.nats:.3g} nats is within 10 % of its ceiling log B = {res.ceiling:.3g} nats "
            f"(B = {res.batch_size}): InfoNCE can never exceed log B, so the true MI may be much larger; "
            f"increase batch_size or use another estimator (nwj, mine, smile)",
            RuntimeWarning,
            stacklevel=3,
        )
    return res.nats, 0, info


_DESCRIPTIONS = {
    "infonce": "InfoNCE neural lower bound (≤ log batch_size), concat MLP critic",
    "nwj": "NWJ neural lower bound E_p[f] − e^{-1} E_q[e^f], concat MLP critic",
    "mine": "MINE: Donsker–Varadhan bound with moving-average gradient correction, concat MLP critic",
    "smile": "SMILE: DV bound with the critic clipped to [−τ, τ], JS-trained concat MLP critic",
}


def _make_estimator(name: str) -> Any:
    """The registered estimator function of one neural bound (they differ only in ``name``)."""

    def estimator(
        x: torch.Tensor,
        z: torch.Tensor,
        *,
        generator: torch.Generator,
        device: torch.device | None = None,
        k: int | None = None,
        backend: str | None = None,
        split: str | None = None,
        shrinkage: str | None = None,
        **options: Any,
    ) -> tuple[float, int, dict[str, Any]]:
        return _run(name, x, z, generator, device, options)

    estimator.__name__ = f"_{name}"
    return estimator


for _name, _description in _DESCRIPTIONS.items():
    MI_ESTIMATORS.add(
        _name, _make_estimator(_name), stochastic=True, uses_knn=False, uses_device=True, description=_description
    )
