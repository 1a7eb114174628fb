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
    "floyd_steinberg",
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
    lo, hi = _value_range(t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError("images contain NaN or inf; local-DP mechanisms need values in [0, 1]")
    if lo < 0 or hi > 1:
        raise ConfigError(
            f"images must lie in [0, 1] for the mechanism's sensitivity to hold, got range [{lo:.4g}, {hi:.4g}]; "
            "divide 0–255 data by 255 (uint8 arrays are divided automatically)"
        )
    return t


def _value_range(t: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of a non-empty tensor as floats (NaN when it holds NaN).

    On the CPU through NumPy (one thread, SIMD): torch's reductions hand work to the thread pool, which stalls for
    milliseconds per call when the other cores are busy.
    """
    if t.device.type == "cpu":
        a = t.detach().numpy()
        return float(a.min()), float(a.max())
    lo, hi = torch.aminmax(t)
    return float(lo), float(hi)


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


_ONE_BITS = 0x3F800000  # float32 bit pattern of 1.0
_U_SHIFT = np.float32(1.0 - 2.0**-24)  # (1 + j·2⁻²³) − (1 − 2⁻²⁴) = (2j + 1)·2⁻²⁴, exact (Sterbenz)
_CPU_CHUNK = 1 << 16  # values per step on the CPU: the step's buffers (4 × 256 KiB) stay in cache


def _add_laplace(x: torch.Tensor, b: float, generator: torch.Generator | None, clip: bool) -> torch.Tensor:
    """``x + Laplace(0, b)`` per value (new float32 tensor, ``x`` untouched), optionally clipped to [0, 1].

    Inverse-CDF sampling from one ``random_`` draw on int32 per value (31 uniform bits from ``generator``): bits 8–30
    give ``j`` uniform on ``[0, 2²³)`` and ``U = (2j + 1)/2²⁴`` (the midpoints of 2²³ equal cells of ``(0, 1)``, built
    exactly in float32 from the bits of ``1 + j·2⁻²³``); bit 0 gives an independent random sign ``σ``. The noise is
    ``σ·b·(−ln U)`` — ``−ln U ~ Exp(1)``, so ``σ·b·(−ln U) ~ Laplace(0, b)`` — cut at ``24·ln 2 ≈ 16.6`` scales
    (probability beyond: 2⁻²⁴). The sign is applied by flipping the float's sign bit.

    CPU: the draws come from torch chunk by chunk (the stream is consumed in order, so the output does not depend on
    the chunk size) and the arithmetic runs in NumPy on the same memory: one thread, SIMD, every chunk in cache, no
    temporaries, and none of torch's thread-pool hand-offs (its vectorised ``log`` splits work over threads from 2 048
    values on, which stalls for milliseconds when the other cores are busy). Other devices:
    :func:`_add_laplace_torch`, the same steps in torch.
    """
    if x.device.type != "cpu":
        return _add_laplace_torch(x, b, generator, clip)
    flat = x.reshape(-1)
    n = flat.numel()
    out = torch.empty(n, dtype=torch.float32)
    step = max(1, min(n, _CPU_CHUNK))
    bits_t = torch.empty(step, dtype=torch.int32)
    bits, sign, xs, ys = bits_t.numpy(), np.empty(step, np.int32), flat.detach().numpy(), out.numpy()
    minus_b = np.float32(-b)
    for i in range(0, n, step):
        j = min(i + step, n)
        r, s, o = bits[: j - i], sign[: j - i], ys[i:j]
        bits_t[: j - i].random_(generator=generator)  # uniform on [0, 2³¹)
        np.left_shift(r, 31, out=s)  # bit 0 → sign bit: 0 or 0x80000000
        np.right_shift(r, 8, out=r)  # j uniform on [0, 2²³)
        np.bitwise_or(r, _ONE_BITS, out=r)  # bits of the float 1 + j·2⁻²³
        np.subtract(r.view(np.float32), _U_SHIFT, out=o)  # U = (2j + 1)·2⁻²⁴ ∈ (0, 1)
        np.log(o, out=o)  # ln U ∈ [−16.6, 0)
        o *= minus_b  # b·E > 0
        oi = o.view(np.int32)
        np.bitwise_xor(oi, s, out=oi)  # σ·b·E
        o += xs[i:j]
        if clip:
            np.clip(o, np.float32(0.0), np.float32(1.0), out=o)
    return out.view(x.shape)


def _add_laplace_torch(x: torch.Tensor, b: float, generator: torch.Generator | None, clip: bool) -> torch.Tensor:
    """:func:`_add_laplace` in torch ops on the whole tensor (any device; the same draws and arithmetic)."""
    r = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_(generator=generator)  # [0, 2³¹)
    s = torch.bitwise_left_shift(r, 31)  # bit 0 → sign bit
    r.bitwise_right_shift_(8).bitwise_or_(_ONE_BITS)  # bits of 1 + j·2⁻²³
    o = r.view(torch.float32).sub_(float(_U_SHIFT)).log_().mul_(-b)  # U = (2j + 1)·2⁻²⁴ → b·(−ln U) > 0
    o.view(torch.int32).bitwise_xor_(s)  # random sign
    return _finish(o.add_(x), clip)


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
        """``x + Laplace(0, b)`` per value by inverse CDF from one 32-bit draw per value (float32), then clip.

        The generator's stream is consumed in order (one ``random_`` int32 value per pixel value), so the same seed
        gives the same output on the same device.
        """
        y = self.preprocess(x)
        return _add_laplace(y, self.scale(_pixels(y)), generator, self.config.clip)

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
    binarize: Literal["threshold", "dither"] = Field(
        default="threshold",
        description="threshold: bit = value > threshold (the original); dither: Floyd–Steinberg error diffusion "
        "(public, per image; keeps grey levels as the local density of 1s)",
    )


def floyd_steinberg(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binary ``(N, …, H, W)`` float images (0.0/1.0) by Floyd–Steinberg error diffusion of ``x`` in [0, 1].

    Raster order, left to right on every row: each value (plus the error diffused to it) becomes 1 when it is
    > ``threshold``, and its error ``value − bit`` goes to the right (7/16), lower-left (3/16), lower (5/16) and
    lower-right (1/16) neighbours; error that would leave the image is dropped. Deterministic and per image
    (vectorised over all leading dimensions), so local areas keep their mean grey level as a density of 1s.

    Example:
        >>> img = torch.full((1, 1, 16, 16), 0.25)
        >>> floyd_steinberg(img).mean().item()  # thresholding at 0.5 gives 0.0
        0.234375
    """
    if x.ndim < 2:
        raise ConfigError(f"dithering needs images of shape (N, ..., H, W), got {tuple(x.shape)}")
    work = x.to(torch.float32, copy=True)
    height, width = work.shape[-2:]
    for i in range(height):
        row = work[..., i, :]
        below = work[..., i + 1, :] if i + 1 < height else None
        for j in range(width):
            old = row[..., j].clone()
            bit = (old > threshold).to(torch.float32)
            row[..., j] = bit
            err = old - bit
            if j + 1 < width:
                row[..., j + 1] += err * (7 / 16)
            if below is not None:
                if j > 0:
                    below[..., j - 1] += err * (3 / 16)
                below[..., j] += err * (5 / 16)
                if j + 1 < width:
                    below[..., j + 1] += err * (1 / 16)
    return work


@PROTECTIONS.register(
    "rr",
    aliases=("randomized_response",),
    kind="data",
    config=RandomizedResponseConfig,
    description="local DP: randomized response on binarised pixels, keep p = e^ε/(1+e^ε) per bit",
)
class RandomizedResponse(PixelMechanism):
    """Binarise, then flip each bit with probability ``q = 1/(1+e^{ε_bit})``, ``ε_bit = ε_image / d``.

    ``binarize="threshold"`` (default, the original): bit = ``x > threshold``; one pixel decides one bit, so the
    per-pixel ε is ε_bit. ``binarize="dither"``: Floyd–Steinberg error diffusion (:func:`floyd_steinberg`), a public
    deterministic function of the image alone — no privacy cost, the per-image ε is unchanged — but one pixel's error
    reaches later bits, so the guarantee per *pixel* is only the per-image ε (reported so in :meth:`budget`).
    """

    name = "rr"
    config_class = RandomizedResponseConfig
    config: RandomizedResponseConfig

    def probabilities(self, pixels: int) -> tuple[float, float]:
        """``(p, q)``: keep and flip probability of each bit for images of ``pixels`` values."""
        return rr_probabilities(self.pixel_epsilon(pixels))

    def _bits(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        y = as_unit_images(x)
        if self.config.binarize == "dither":
            return floyd_steinberg(y, self.config.threshold) > 0.5
        return y > self.config.threshold

    def preprocess(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Binarised images (0.0 / 1.0): ``x > threshold``, or Floyd–Steinberg dithered with ``binarize="dither"``."""
        return self._bits(x).float()

    def privatize(self, x: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits XOR Bernoulli(q), vectorised; output values are 0.0 / 1.0."""
        bits = self._bits(x)
        _, q = self.probabilities(_pixels(bits))
        flip = torch.rand(bits.shape, generator=generator, device=bits.device) < q
        return bits.logical_xor_(flip).float()

    def budget(self, pixels: int | None = None) -> Budget:
        """Per image: ε_image = d·ε_bit; details hold p, q, the binarisation and ε per bit and per pixel.

        With ``binarize="dither"`` one pixel can change many bits, so ``per_pixel_epsilon`` is the per-image ε.
        """
        c = self.config
        det: dict[str, Any] = {"threshold": c.threshold, "binarize": c.binarize}
        if pixels is None:
            if c.scope != "pixel":
                return self._budget(None, None, None, **det)
            p, q = rr_probabilities(c.epsilon)
            return self._budget(None, c.epsilon if c.binarize == "threshold" else None, None, p=p, q=q, **det)
        p, q = self.probabilities(pixels)
        per_bit = self.pixel_epsilon(pixels)
        per_pixel = per_bit if c.binarize == "threshold" else self.image_epsilon(pixels)
        return self._budget(pixels, per_pixel, None, p=p, q=q, per_bit_epsilon=per_bit, **det)


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
