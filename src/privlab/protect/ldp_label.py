"""Local-DP labels by unary encoding (Wang et al. 2017): symmetric (SUE) and optimised (OUE).

A label ``y ∈ {0, …, K−1}`` is one-hot encoded and every bit is reported independently: the true class's bit is 1
with probability ``p``, every other bit with probability ``q``. ε = ln(p(1−q)/((1−p)q)) per label:

* SUE (basic RAPPOR): ``p = e^{ε/2}/(1+e^{ε/2})``, ``q = 1 − p``;
* OUE (optimised): ``p = 1/2``, ``q = 1/(e^ε + 1)`` — lower variance of frequency estimates.

A privatised label is a bit vector with zero, one or several ones. To train a classifier we **decode** it to one
label: ``map`` (default) takes the most likely class under a uniform prior — for both encodings the likelihood ratio
of a set bit is e^ε, so that is a uniformly random set bit, or a uniformly random class when no bit is set;
``sample`` draws from the posterior ``P(c) ∝ e^{ε·b_c}`` instead. Decoding is post-processing (no privacy cost) and
uses its own seeded generator. :meth:`UnaryEncoding.estimate_frequencies` gives the unbiased class-frequency
estimates ``(mean bit − q)/(p − q)``.

Example:
    >>> import torch
    >>> ue = UnaryEncoding(kind="oue", epsilon=2.0, num_classes=10)
    >>> bits = ue.privatize(torch.tensor([3, 1, 4]), torch.Generator().manual_seed(0))
    >>> bits.shape, bits.dtype
    (torch.Size([3, 10]), torch.uint8)
    >>> ue.budget().epsilon
    2.0
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, ValidationError

from privlab.config import Spec
from privlab.errors import BudgetError, ConfigError
from privlab.protect.base import PROTECTIONS, Budget
from privlab.protect.ldp_budget import check_epsilon, ue_epsilon, ue_probabilities

__all__ = ["LABEL_EPSILON_MAX", "UnaryEncoding", "UnaryEncodingConfig"]

#: Label ε above this is implemented as this value (more private than asked; the budget reports it): beyond it q
#: falls below what float64 uniforms resolve and the bits would be released in the clear (ε = ∞ in practice).
LABEL_EPSILON_MAX = 30.0


class UnaryEncodingConfig(Spec):
    """Unary encoding of labels."""

    kind: Literal["sue", "oue"] = Field(default="oue", description="symmetric (sue) or optimised (oue)")
    epsilon: float = Field(gt=0, description="ε (nats) per label")
    num_classes: int = Field(default=10, ge=2, description="number of classes K (bits per label)")
    decode: Literal["map", "sample"] = Field(
        default="map", description="bits → one label: most likely class (map) or a posterior draw (sample)"
    )


@PROTECTIONS.register(
    "ue",
    aliases=("unary_encoding",),
    kind="data",
    target="labels",
    config=UnaryEncodingConfig,
    description="local DP on labels: unary encoding, symmetric (SUE) or optimised (OUE), ε per label",
)
class UnaryEncoding:
    """Unary-encoding label mechanism; :meth:`privatize` returns bit vectors, :meth:`decode` training labels."""

    name = "ue"

    def __init__(self, config: UnaryEncodingConfig | None = None, **kwargs: Any) -> None:
        if config is None:
            if "epsilon" in kwargs:
                kwargs["epsilon"] = check_epsilon(kwargs["epsilon"], "label epsilon")
            try:
                config = UnaryEncodingConfig(**kwargs)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"]) or "(config)"
                raise ConfigError(f"ue mechanism: {loc}: {err['msg']} (got {err.get('input')!r})") from None
        self.config = config
        self.epsilon = min(config.epsilon, LABEL_EPSILON_MAX)
        self.p, self.q = ue_probabilities(self.epsilon, config.kind)
        if not self.q < self.p:
            raise BudgetError(
                f"label epsilon {config.epsilon:g} is below what float64 resolves (p = q = {self.p:g}); use ε ≥ 1e-15"
            )

    def _check(self, labels: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(labels)
        if y.ndim != 1 or y.dtype.is_floating_point:
            raise ConfigError(f"labels must be a 1-d integer tensor, got shape {tuple(y.shape)} dtype {y.dtype}")
        y = y.long()
        k = self.config.num_classes
        if y.numel() and (y.min() < 0 or y.max() >= k):
            raise ConfigError(f"labels must lie in [0, {k}), got [{int(y.min())}, {int(y.max())}]; set num_classes")
        return y

    def privatize(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N,)`` int labels → ``(N, K)`` uint8 bit vectors (true bit 1 w.p. p, others w.p. q)."""
        y = self._check(labels)
        k = self.config.num_classes
        onehot = torch.nn.functional.one_hot(y, k).bool()
        u = torch.rand((y.shape[0], k), generator=generator, device=y.device, dtype=torch.float64)
        p, q = torch.tensor(self.p, dtype=torch.float64), torch.tensor(self.q, dtype=torch.float64)
        return (u < torch.where(onehot, p, q)).to(torch.uint8)

    def decode(self, bits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N, K)`` bit vectors → ``(N,)`` int64 labels by the configured rule (``map`` or ``sample``)."""
        b = torch.as_tensor(bits)
        if b.ndim != 2 or b.shape[1] != self.config.num_classes:
            raise ConfigError(f"bits must have shape (N, {self.config.num_classes}), got {tuple(b.shape)}")
        b = b.float()
        u = torch.rand(b.shape, generator=generator, device=b.device)
        if self.config.decode == "map":
            # set bits score in [1, 1.5), unset ones in [0, 0.5): a uniform choice among the most likely classes
            return (b + 0.5 * u).argmax(1)
        gumbel = -torch.log(-torch.log(u.clamp(1e-12, 1 - 1e-7)))
        return (self.epsilon * b + gumbel).argmax(1)

    def privatize_labels(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """:meth:`privatize` then :meth:`decode` with the same generator: noisy int labels for training."""
        return self.decode(self.privatize(labels, generator), generator)

    def estimate_frequencies(self, bits: torch.Tensor) -> torch.Tensor:
        """Unbiased estimates of the class frequencies (fractions, ``(K,)``) from privatised bit vectors."""
        mean = torch.as_tensor(bits).double().mean(0)
        return (mean - self.q) / (self.p - self.q)

    def budget(self) -> Budget:
        """ε per label (recomputed from p and q), δ = 0; details hold kind, p, q, K and the requested ε.

        A requested ε above :data:`LABEL_EPSILON_MAX` is implemented (and reported) as that maximum.
        """
        eps = ue_epsilon(self.p, self.q)
        return Budget(
            "ldp",
            "label",
            eps,
            None,
            details={
                "mechanism": self.config.kind,
                "p": self.p,
                "q": self.q,
                "num_classes": self.config.num_classes,
                "requested_epsilon": self.config.epsilon,
            },
        )

    def __repr__(self) -> str:
        return f"UnaryEncoding({self.config!r})"
