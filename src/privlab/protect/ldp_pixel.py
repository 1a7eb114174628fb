"""Local-DP mechanisms on images: Laplace, Gaussian (classical / analytic) and randomized response on pixels.

Every mechanism is a class with a pydantic config, registered in ``PROTECTIONS`` (``kind="data"``), and offers

* :meth:`preprocess` — the deterministic, public part (identity, L2 normalisation, binarisation) that is also applied
  to evaluation data so a model sees inputs of the same form (no noise, no privacy cost);
* :meth:`privatize` — ``preprocess`` + noise, over the whole tensor at once with a seeded ``torch.Generator``;
* :meth:`budget` — what one release costs, as a :class:`~privlab.protect.Budget` (per image, with the per-pixel ε
  in ``details``).

Images are ``(N, C, H, W)`` (or any ``(N, ...)``) floats in ``[0, 1]`` (uint8 arrays are divided by 255); a
"pixel" is one value (one channel of one position), and ``d = C·H·W`` values make an image. ε is in nats.

``epsilon`` is per image by default (``scope="image"``); ``scope="pixel"`` reads it per pixel value instead. For the
Laplace mechanism and randomized response a change of one pixel costs ε_pixel and a change of a whole image
``d·ε_pixel = ε_image`` (L1 sensitivity ``d`` / basic composition over the ``d`` bits). The Gaussian mechanism acts on
the L2-normalised image as a whole; its per-pixel ε equals its per-image ε.

Outputs are clipped to ``[0, 1]`` by default (post-processing: no privacy cost; ``clip=False`` keeps the unbiased
noisy values). Noise comes from torch's float32 generators; like every floating-point implementation this is not
hardened against floating-point side channels (Mironov 2012) — use OpenDP where that matters.

Example:
    >>> import torch
    >>> mech = LaplaceMechanism(epsilon=64.0)
    >>> x = torch.rand(5, 1, 8, 8)
    >>> y = mech.privatize(x, torch.Generator().manual_seed(0))
    >>> y.shape, bool(((y >= 0) & (y <= 1)).all())
    (torch.Size([5, 1, 8, 8]), True)
    >>> b = mech.budget(pixels=64)
    >>> b.scope, b.epsilon, b.details["per_pixel_epsilon"], b.details["scale"]
    ('image', 64.0, 1.0, 1.0)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from privlab.config import Spec
from privlab.errors import BudgetError, ConfigError
from privlab.protect.base import PROTECTIONS, Budget
from privlab.protect.ldp_budget import (
    check_delta,
    check_epsilon,
    gaussian_sigma,
    laplace_scale,
    rr_probabilities,
)

__all__ = [
    "GaussianConfig",
    "GaussianMechanism",
    "LaplaceConfig",
    "LaplaceMechanism",
    "PixelMechanism",
    "RandomizedResponse",
    "RandomizedResponseConfig",
    "as_unit_images",
    "build_pixel_mechanism",
]


def as_unit_images(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``x`` as a float32 tensor in ``[0, 1]``: uint8 is divided by 255; other values must already lie in [0, 1].

    Raises:
        ConfigError: NaN/inf, or float values outside [0, 1] (the sensitivity of every mechanism assumes [0, 1]).
    """
    t = torch.as_tensor(x)
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    if t.dtype == torch.bool:
        return t.float()
    t = t.float()
    if t.numel() == 0:
        return t
    lo, hi = torch.aminmax(t)
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        raise ConfigError("images contain NaN or inf; local-DP mechanisms need values in [0, 1]")
    if lo < 0 or hi > 1:
        raise ConfigError(
            f"images must lie in [0, 1] for the mechanism's sensitivity to hold, got range [{lo:.4g}, {hi:.4g}]; "
            "divide 0–255 data by 255 (uint8 arrays are divided automatically)"
        )
    return t


class _MechConfig(Spec):
    epsilon: float = Field(gt=0, description="ε (nats) per image (scope=image) or per pixel value (scope=pixel)")
    scope: Literal["image", "pixel"] = Field(default="image", description="what one ε covers")
    clip: bool = Field(default=True, description="clip the output to [0, 1] (post-processing, free)")


class PixelMechanism:
    """Base of the image mechanisms: ε conversion between pixel and image scope, checks, the budget record."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[_MechConfig]] = _MechConfig

    def __init__(self, config: _MechConfig | None = None, **kwargs: Any) -> None:
        if config is None:
            if "epsilon" in kwargs:
                kwargs["epsilon"] = check_epsilon(kwargs["epsilon"])
            config = self.config_class(**kwargs)
        elif kwargs:
            config = config.model_copy(update=kwargs)
        check_epsilon(config.epsilon)
        self.config = config

    # epsilon bookkeeping ----------------------------------------------------------------------------------------
    def pixel_epsilon(self, pixels: int) -> float:
        """ε per pixel value for images of ``pixels`` values."""
        c = self.config
        return c.epsilon if c.scope == "pixel" else c.epsilon / pixels

    def image_epsilon(self, pixels: int) -> float:
        """ε per image of ``pixels`` values."""
        c = self.config
        return c.epsilon if c.scope == "image" else c.epsilon * pixels

    # interface --------------------------------------------------------------------------------------------------
    def preprocess(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The deterministic public transform (no noise): identity here."""
        return as_unit_images(x)

    def privatize(self, x: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N, ...)`` images in [0, 1] → privatised images of the same shape (float32)."""
        raise NotImplementedError

    def budget(self, pixels: int | None = None) -> Budget:
        """The budget of one release of one image of ``pixels`` values (needed to convert between scopes)."""
        raise NotImplementedError

    def _budget(self, pixels: int | None, per_pixel: float | None, delta: float | None, **details: Any) -> Budget:
        c = self.config
        if pixels is None and c.scope == "pixel":
            return Budget("ldp", "pixel", c.epsilon, delta, details={"mechanism": self.name, **details})
        if pixels is None:
            return Budget("ldp", "image", c.epsilon, delta, details={"mechanism": self.name, **details})
        det = {"mechanism": self.name, "pixels": int(pixels), "per_pixel_epsilon": per_pixel, **details}
        return Budget("ldp", "image", self.image_epsilon(pixels), delta, details=det)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def _pixels(x: torch.Tensor) -> int:
    if x.ndim < 2:
        raise ConfigError(f"images must have shape (N, ...) with one image per row, got {tuple(x.shape)}")
    return int(math.prod(x.shape[1:]))


def _finish(y: torch.Tensor, clip: bool) -> torch.Tensor:
    return y.clamp_(0.0, 1.0) if clip else y


# -- Laplace -------------------------------------------------------------------------------------------------------


class LaplaceConfig(_MechConfig):
    """Laplace mechanism on pixel values in [0, 1]: scale ``1/ε_pixel = d/ε_image`` (sensitivity 1 per value)."""


@PROTECTIONS.register(
    "laplace",
    kind="data",
    config=LaplaceConfig,
    description="local DP: Laplace noise per pixel value in [0, 1] (scale d/ε per image = 1/ε per pixel)",
)
class LaplaceMechanism(PixelMechanism):
    """Laplace noise on every pixel value: ε_pixel-LDP per value, ε_image = d·ε_pixel per image (L1 sensitivity d)."""

    name = "laplace"
    config_class = LaplaceConfig

    def scale(self, pixels: int) -> float:
        """Laplace scale b (pixel units) for images of ``pixels`` values."""
        return laplace_scale(self.pixel_epsilon(pixels), 1.0)

    def privatize(self, x: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x + Laplace(0, b)`` per value by inverse CDF from one uniform draw (float32), then clip."""
        y = self.preprocess(x)
        b = self.scale(_pixels(y))
        u = torch.rand(y.shape, generator=generator, device=y.device, dtype=torch.float32)
        # inverse CDF: noise = -b·sgn(u−½)·ln(1 − 2|u−½|); u = 0 is clamped (tail cut at ≈ 16.6 b)
        u.sub_(0.5)
        sign = torch.sign(u)
        u.abs_().mul_(-2.0).log1p_().clamp_(min=-16.635532)
        y = torch.addcmul(y, u, sign, value=-b, out=u)  # the noise buffer becomes the output; input untouched
        return _finish(y, self.config.clip)

    def budget(self, pixels: int | None = None) -> Budget:
        """Per image (with ``pixels``): ε_image = d·ε_pixel, δ = 0; details hold the scale and per-pixel ε."""
        if pixels is None:
            eps_pix = self.config.epsilon if self.config.scope == "pixel" else None
            return self._budget(None, eps_pix, None, scale=None if eps_pix is None else 1.0 / eps_pix)
        return self._budget(pixels, self.pixel_epsilon(pixels), None, scale=self.scale(pixels), sensitivity_l1=pixels)


# -- Gaussian ------------------------------------------------------------------------------------------------------


class GaussianConfig(_MechConfig):
    """Gaussian mechanism on whole images (optionally L2-normalised first)."""

    delta: float = Field(default=1e-5, gt=0, lt=1, description="δ per image release")
    calibration: Literal["analytic", "classical"] = Field(
        default="analytic", description="analytic (Balle & Wang 2018, any ε) or classical (proven for ε < 1 only)"
    )
    normalize: bool = Field(default=True, description="divide each image by its L2 norm first (as the original)")
    sensitivity: float | None = Field(
        default=None,
        gt=0,
        description="L2 sensitivity; default √2 for unit-norm non-negative images (the original used 1), √d raw",
    )
    strict: bool = Field(
        default=True, description="classical calibration with ε ≥ 1: error (true) or warn and mark unproven (false)"
    )


@PROTECTIONS.register(
    "gaussian",
    kind="data",
    config=GaussianConfig,
    description="local DP: Gaussian noise on L2-normalised images (analytic or classical σ), (ε, δ) per image",
)
class GaussianMechanism(PixelMechanism):
    """Gaussian noise on the whole image: ``x/‖x‖₂ + N(0, σ²I)`` with σ from (ε, δ, Δ₂) per image.

    The L2 sensitivity of unit-norm non-negative vectors is √2 (the default); with ``normalize=False`` it is √d.
    ``scope`` must be ``image`` (the mechanism has no per-pixel calibration).
    """

    name = "gaussian"
    config_class = GaussianConfig
    config: GaussianConfig

    def __init__(self, config: GaussianConfig | None = None, **kwargs: Any) -> None:
        if config is None and "delta" in kwargs:
            kwargs["delta"] = check_delta(kwargs["delta"])
        super().__init__(config, **kwargs)
        if self.config.scope != "image":
            raise BudgetError("the Gaussian mechanism is calibrated per image: use scope 'image'")
        self._sigma_cache: dict[int, float] = {}

    def sensitivity(self, pixels: int) -> float:
        """L2 sensitivity Δ₂ for images of ``pixels`` values."""
        c = self.config
        if c.sensitivity is not None:
            return float(c.sensitivity)
        return math.sqrt(2.0) if c.normalize else math.sqrt(pixels)

    def sigma(self, pixels: int) -> float:
        """Noise standard deviation σ (in the units of the normalised image)."""
        if pixels not in self._sigma_cache:
            c = self.config
            self._sigma_cache[pixels] = gaussian_sigma(
                c.epsilon, c.delta, self.sensitivity(pixels), c.calibration, strict=c.strict
            )
        return self._sigma_cache[pixels]

    def preprocess(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Images in [0, 1], each divided by its L2 norm (all-zero images stay zero) when ``normalize``."""
        y = as_unit_images(x)
        if not self.config.normalize:
            return y
        norms = y.flatten(1).norm(dim=1).clamp_min(1e-12)
        return y / norms.view(-1, *([1] * (y.ndim - 1)))

    def privatize(self, x: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """``preprocess(x) + σ·N(0, I)``, then clip to [0, 1]."""
        y = self.preprocess(x)
        s = self.sigma(_pixels(y))
        noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=torch.float32)
        y = noise.mul_(s).add_(y)
        return _finish(y, self.config.clip)

    def budget(self, pixels: int | None = None) -> Budget:
        """(ε, δ) per image; details hold σ, Δ₂, calibration and whether the guarantee is proven."""
        c = self.config
        d = pixels if pixels is not None else 784
        proven = c.calibration == "analytic" or c.epsilon < 1
        det: dict[str, Any] = {
            "calibration": c.calibration,
            "sensitivity_l2": self.sensitivity(d),
            "normalize": c.normalize,
            "proven": proven,
        }
        if pixels is not None:
            det["sigma"] = self.sigma(pixels)
        if not proven:
            det["note"] = "classical calibration with ε ≥ 1: not a proven (ε, δ) guarantee"
        return self._budget(pixels, c.epsilon if pixels is not None else None, c.delta, **det)


# -- randomized response ---------------------------------------------------------------------------------------------


class RandomizedResponseConfig(_MechConfig):
    """Randomized response on binarised pixels."""

    threshold: float = Field(
        default=0.5, ge=0, lt=1, description="a pixel is 1 when its value is > threshold (original: 0 or 115/255)"
    )


@PROTECTIONS.register(
    "rr",
    aliases=("randomized_response",),
    kind="data",
    config=RandomizedResponseConfig,
    description="local DP: randomized response on binarised pixels, keep p = e^ε/(1+e^ε) per bit",
)
class RandomizedResponse(PixelMechanism):
    """Binarise (``x > threshold``), then flip each bit with probability ``q = 1/(1+e^{ε_pixel})``."""

    name = "rr"
    config_class = RandomizedResponseConfig
    config: RandomizedResponseConfig

    def probabilities(self, pixels: int) -> tuple[float, float]:
        """``(p, q)``: keep and flip probability of each bit for images of ``pixels`` values."""
        return rr_probabilities(self.pixel_epsilon(pixels))

    def preprocess(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Binarised images: 1.0 where the value is > threshold, else 0.0."""
        return (as_unit_images(x) > self.config.threshold).float()

    def privatize(self, x: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits XOR Bernoulli(q), vectorised; output values are 0.0 / 1.0."""
        bits = as_unit_images(x) > self.config.threshold
        _, q = self.probabilities(_pixels(bits))
        flip = torch.rand(bits.shape, generator=generator, device=bits.device) < q
        return bits.logical_xor_(flip).float()

    def budget(self, pixels: int | None = None) -> Budget:
        """Per image: ε_image = d·ε_pixel; details hold p, q and the threshold."""
        if pixels is None:
            if self.config.scope != "pixel":
                return self._budget(None, None, None, threshold=self.config.threshold)
            p, q = rr_probabilities(self.config.epsilon)
            return self._budget(None, self.config.epsilon, None, p=p, q=q, threshold=self.config.threshold)
        p, q = self.probabilities(pixels)
        return self._budget(pixels, self.pixel_epsilon(pixels), None, p=p, q=q, threshold=self.config.threshold)


_MECHANISMS: dict[str, type[PixelMechanism]] = {
    "laplace": LaplaceMechanism,
    "gaussian": GaussianMechanism,
    "rr": RandomizedResponse,
}


def build_pixel_mechanism(name: str, **params: Any) -> PixelMechanism:
    """A pixel mechanism by registered name (``laplace``, ``gaussian``, ``rr``) with its config values.

    Raises:
        UnknownNameError: not a registered protection. ConfigError: not an image mechanism, or a bad parameter.
        BudgetError: ε ≤ 0, δ ∉ (0, 1), or an unproven classical Gaussian calibration with ``strict``.
    """
    from pydantic import ValidationError

    cls = PROTECTIONS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, PixelMechanism)):
        raise ConfigError(f"{name!r} is not an image mechanism; use one of: {', '.join(_MECHANISMS)}")
    try:
        return cls(**params)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{name} mechanism: {loc}: {err['msg']} (got {err.get('input')!r})") from None
