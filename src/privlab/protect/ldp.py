"""The local-DP builder: a total ε split into an image mechanism and a label mechanism.

The builders of the LDP family: :func:`build_ldp_mechanisms` (both mechanisms from a total ε) and
:func:`~privlab.protect.ldp_pixel.build_pixel_mechanism` (one image mechanism by its ``PROTECTIONS`` name).

One allocation for the ``ldp`` experiment and ``privlab ldp budget``: a share ``label_fraction`` of the total ε goes
to the label (unary encoding), the rest to the image, divided equally among ``releases`` image releases (basic
composition); δ (Gaussian) is divided the same way.

Example:
    >>> mech, label, alloc = build_ldp_mechanisms("laplace", 100.0, label_mechanism="sue", label_fraction=0.1)
    >>> mech.name, round(alloc.image_epsilon, 6), round(label.epsilon, 6)
    ('laplace', 90.0, 10.0)
"""

from __future__ import annotations

from typing import Any

from privlab.protect.ldp_budget import Allocation, allocate
from privlab.protect.ldp_label import UnaryEncoding
from privlab.protect.ldp_pixel import PixelMechanism, build_pixel_mechanism

# the LDP family's public face: a pipeline builds and types its mechanisms through this module (registry-backed
# builders), never through the concrete mechanism files
__all__ = ["PixelMechanism", "UnaryEncoding", "build_ldp_mechanisms", "build_pixel_mechanism"]


def build_ldp_mechanisms(
    mechanism: str,
    epsilon: float,
    *,
    label_mechanism: str = "none",
    label_fraction: float = 0.0,
    releases: int = 1,
    delta: float | None = None,
    num_classes: int = 10,
    label_decode: str = "map",
    **params: Any,
) -> tuple[PixelMechanism, UnaryEncoding | None, Allocation]:
    """The image mechanism, the label mechanism (None for ``label_mechanism="none"``) and the allocation of
    ``epsilon`` (nats, per training example) between them.

    Args:
        mechanism: ``laplace``, ``gaussian`` or ``rr``.
        epsilon: total ε per example (image and label together).
        label_mechanism: ``none``, ``sue`` or ``oue``; ``label_fraction`` of ε goes to it (ignored for ``none``).
        releases: fresh image releases sharing the image ε (and δ) equally.
        delta: δ of the run (Gaussian only; split over the releases).
        num_classes: classes K of the labels; ``label_decode``: ``map`` or ``sample``.
        params: further settings of the image mechanism (Gaussian ``calibration``/``strict``/``sensitivity``,
            rr ``threshold``/``binarize``).

    Raises:
        BudgetError: ε ≤ 0, δ ∉ (0, 1), a split that underflows. ConfigError: an unknown mechanism or bad setting.
    """
    alloc = allocate(
        epsilon,
        label_fraction=label_fraction if label_mechanism != "none" else 0.0,
        releases=releases,
        delta=delta if mechanism == "gaussian" else None,
    )
    image: dict[str, Any] = {"epsilon": alloc.image_epsilon}
    if mechanism == "gaussian":
        image["delta"] = alloc.image_delta
    mech = build_pixel_mechanism(mechanism, **image, **params)
    label = None
    if label_mechanism != "none":
        label = UnaryEncoding(
            kind=label_mechanism, epsilon=alloc.label_epsilon, num_classes=num_classes, decode=label_decode
        )
    return mech, label, alloc
