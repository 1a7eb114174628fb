"""LPIPS (Zhang et al. 2018) through torchmetrics, with backbone weights from local files only — never a download.

torchmetrics ships LPIPS's small linear layers (``lpips_models/{alex,vgg,squeeze}.pth``, v0.1) but builds the
ImageNet backbone with torchvision ``weights=DEFAULT``, which downloads it. privlab builds the same torchmetrics
module with an empty backbone and loads the backbone weights itself, from the first of:

1. the ``weights`` argument (``--lpips-weights``): a ``.safetensors`` file or a torchvision ``.pth`` state dict
   (read with ``torch.load(weights_only=True)``), either the whole torchvision model (``features.0.weight`` …,
   classifier keys are ignored) or only its ``features`` part (``0.weight`` … ``10.bias`` for AlexNet); a folder
   is searched for the torchvision file name;
2. the environment variable ``PRIVLAB_LPIPS_WEIGHTS`` (same forms);
3. the torch hub cache: ``torch.hub.get_dir()/checkpoints/<torchvision file>`` (``alexnet-owt-7be5be79.pth``,
   ``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth``), where torchvision itself would have put it.

Without any of them it raises :class:`~privlab.errors.DataMissingError` at once, saying how to provide one.
``weights="random"`` builds a seeded random backbone, only when asked for; its values are labelled
``lpips-random`` (useful for plumbing tests, meaningless as a perceptual distance).

Inputs are images in ``[0, 1]``; they are mapped to ``[−1, 1]`` (``2x − 1``) inside, which is what LPIPS expects
(feeding ``[0, 1]`` to LPIPS unscaled makes images look more similar than they are). Grey images are replicated to
3 channels. Images smaller than the backbone allows (AlexNet 31 px, VGG 16 px, SqueezeNet 17 px) are upsampled
bilinearly so that their shorter side is 64 px. Lower is more similar; 0 for identical images.

This file also registers the image metric ``lpips`` (columns ``lpips`` or ``lpips-random``).

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> d = lpips_distance(x, x, weights="random")
    >>> d.shape, float(d.abs().max()) < 1e-6
    (torch.Size([2]), True)
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from privlab.errors import ConfigError, DataMissingError, FileFormatError
from privlab.measure.functional.image_similarity import check_images
from privlab.measure.image.base import MetricOutput, SimilarityOptions, register_metric

__all__ = [
    "ENV_VAR",
    "LPIPS_NETS",
    "LPIPSMetric",
    "WeightSource",
    "hub_checkpoint",
    "lpips_available",
    "lpips_distance",
    "resolve_weights",
]

ENV_VAR = "PRIVLAB_LPIPS_WEIGHTS"

LPIPS_NETS: dict[str, tuple[str, str, int]] = {
    "alex": ("alexnet", "alexnet-owt-7be5be79.pth", 31),
    "vgg": ("vgg16", "vgg16-397923af.pth", 16),
    "squeeze": ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth", 17),
}
"""LPIPS net → (torchvision architecture, torchvision checkpoint file name, smallest input side in pixels)."""

_UPSAMPLE_TO = 64
_CHUNK = 64


@dataclass(frozen=True)
class WeightSource:
    """Where an LPIPS backbone comes from: ``origin`` in words and the file (None for the random backbone)."""

    net: str
    path: Path | None
    origin: str

    @property
    def random(self) -> bool:
        """True for the untrained (seeded random) backbone."""
        return self.path is None


def _check_net(net: str) -> str:
    if net not in LPIPS_NETS:
        raise ConfigError(f"unknown LPIPS net {net!r}; use one of {', '.join(LPIPS_NETS)}")
    return net


def hub_checkpoint(net: str = "alex") -> Path:
    """The torch hub cache file torchvision would use for ``net``'s backbone (may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_NETS[_check_net(net)][1]


def _how_to(net: str) -> str:
    arch, fname, _ = LPIPS_NETS[net]
    return (
        f"pass --lpips-weights PATH (lpips_weights=PATH in Python: torchvision's {arch} .pth or its features part as "
        f".safetensors), or set {ENV_VAR}=PATH, or put {fname} (https://download.pytorch.org/models/{fname}) into "
        f"{hub_checkpoint(net).parent}/; '--lpips-weights random' gives an untrained backbone (labelled lpips-random)"
    )


def _file_in(path: Path, net: str, what: str) -> Path:
    if path.is_dir():
        inner = path / LPIPS_NETS[net][1]
        if not inner.is_file():
            raise DataMissingError(
                f"LPIPS-{net} weights: {what} {path} is a folder without {LPIPS_NETS[net][1]}; {_how_to(net)}"
            )
        return inner
    if not path.is_file():
        raise DataMissingError(f"LPIPS-{net} weights: {what} {path} does not exist; {_how_to(net)}")
    return path


def resolve_weights(net: str = "alex", weights: str | Path | None = None) -> WeightSource:
    """Find the backbone weights of LPIPS-``net`` (argument → ``PRIVLAB_LPIPS_WEIGHTS`` → hub cache), offline.

    Raises:
        ConfigError: unknown ``net``.
        DataMissingError: no weights found (the message says how to provide them), or a given path is absent.
    """
    _check_net(net)
    if isinstance(weights, str) and weights.strip().lower() == "random":
        return WeightSource(net, None, "random backbone (seed 0), asked for with weights='random'")
    if weights is not None and str(weights).strip():
        p = Path(weights).expanduser().resolve()
        return WeightSource(net, _file_in(p, net, "the given path"), "the weights argument")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return WeightSource(net, _file_in(Path(env).expanduser(), net, f"{ENV_VAR}"), f"${ENV_VAR}")
    hub = hub_checkpoint(net)
    if hub.is_file():
        return WeightSource(net, hub, "the torch hub cache")
    raise DataMissingError(
        f"LPIPS-{net} needs ImageNet {LPIPS_NETS[net][0]} backbone weights and privlab never downloads them; none "
        f"found (no weights given, {ENV_VAR} unset, no {hub}): {_how_to(net)}"
    )


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pth`` file, without unpickling arbitrary objects."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError, LookupError, TypeError,
            AttributeError, MemoryError) as e:  # fmt: skip  # torch.load of random bytes raises any of these
        msg = " ".join(str(e).split())[:160]
        raise FileFormatError(
            f"{path}: cannot read LPIPS backbone weights ({type(e).__name__}: {msg}); expected a .safetensors file or "
            "a torchvision state dict .pth (loaded with weights_only=True, so pickled models are refused)"
        ) from None
    if isinstance(state, dict) and len(state) == 1 and isinstance(next(iter(state.values())), dict):
        state = next(iter(state.values()))  # {"state_dict": {...}}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FileFormatError(f"{path}: expected a state dict (name → tensor), got {type(state).__name__}")
    return state


def _backbone_state(model: torch.nn.Module, state: dict[str, torch.Tensor], net: str, path: Path) -> dict:
    """Map torchvision ``features.<i>.…`` / ``<i>.…`` keys onto torchmetrics' sliced backbone ``net.<slice>.<i>.…``."""
    prefix_of: dict[str, str] = {}
    for name, mod in model.net.named_modules():
        if isinstance(mod, torch.nn.Sequential):
            for child in mod._modules:
                if child.isdigit():
                    prefix_of[child] = f"net.{name}"
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key.removeprefix("module.").removeprefix("features.")
        head, _, rest = k.partition(".")
        if head in prefix_of and rest:
            mapped[f"{prefix_of[head]}.{head}.{rest}"] = value
    expected = {k: v for k, v in model.state_dict().items() if k.startswith("net.")}
    arch, fname, _ = LPIPS_NETS[net]
    missing = [k for k in expected if k not in mapped]
    wrong = [k for k in expected if k in mapped and tuple(mapped[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        bad = missing or wrong
        example = bad[0].split(".", 2)[2]
        raise FileFormatError(
            f"{path}: not {arch} weights for LPIPS-{net}: {len(missing)} of {len(expected)} backbone tensors missing "
            f"and {len(wrong)} of the wrong shape (e.g. features.{example}); expected torchvision's {arch} state dict "
            f"({fname}) or its features part (keys 0.weight …)"
        )
    return mapped


def _linear_layers(net: str) -> dict[str, torch.Tensor]:
    """LPIPS v0.1 linear-layer weights shipped inside the torchmetrics wheel."""
    import torchmetrics.functional.image.lpips as tm_lpips

    path = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth"
    if not path.is_file():
        raise DataMissingError(
            f"LPIPS linear layers {path} are missing from the torchmetrics installation; reinstall it"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


@functools.lru_cache(maxsize=8)
def _build(net: str, path: str | None, device: str) -> torch.nn.Module:
    """torchmetrics' LPIPS module with our weights (cached per net, weights file and device)."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the random backbone (and the throw-away init of a real one) is seeded
        # pretrained=False: no linear layers loaded by torchmetrics; pnet_rand=True: torchvision weights=None (no
        # download). Both are loaded below.
        model = _NoTrainLpips(pretrained=False, net=net, pnet_rand=True)
    state = _linear_layers(net)
    if path is not None:
        state.update(_backbone_state(model, _read_state(Path(path)), net, Path(path)))
    result = model.load_state_dict(state, strict=False)
    # ``lins.<i>`` are the same parameters as ``lin<i>`` (a ModuleList alias), loaded through ``lin<i>``
    missing = [
        k
        for k in result.missing_keys
        if (k.startswith("lin") and not k.startswith("lins.")) or (path is not None and k.startswith("net."))
    ]
    if missing:  # a programming error: torchmetrics changed its layout
        raise RuntimeError(f"LPIPS-{net}: weights not loaded for {missing[:3]}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(torch.device(device))


def _device(device: str | torch.device | None) -> torch.device:
    from privlab.context import resolve_device

    if isinstance(device, torch.device):
        return device
    return resolve_device(device or "auto")


class LPIPSMetric:
    """LPIPS-``net`` as a callable ``(original, reconstruction) -> Tensor[N]`` on ``device`` (CUDA when present).

    The torch module is built once per (net, weights file, device) and shared. ``name`` is ``"lpips"`` with real
    weights and ``"lpips-random"`` with ``weights="random"``; ``note`` says exactly what was used.

    Raises:
        ConfigError: unknown net or device. DataMissingError: no backbone weights (see the module docstring).
        FileFormatError: a weights file that cannot be read or is for another architecture.
    """

    def __init__(
        self, net: str = "alex", weights: str | Path | None = None, device: str | torch.device | None = None
    ) -> None:
        self.net = _check_net(net)
        self.source = resolve_weights(net, weights)
        self.device = _device(device)
        self.model = _build(net, None if self.source.path is None else str(self.source.path), str(self.device))
        self.name = "lpips-random" if self.source.random else "lpips"

    @property
    def note(self) -> str:
        """The exact variant, in words."""
        where = self.source.origin if self.source.path is None else f"{self.source.path} ({self.source.origin})"
        arch, _, min_hw = LPIPS_NETS[self.net]
        random = " — RANDOM backbone: not a perceptual distance, for tests only" if self.source.random else ""
        return (
            f"LPIPS-{self.net} v0.1 (torchmetrics linear layers), {arch} backbone weights from {where}{random}; "
            f"inputs in [0, 1] scaled to [−1, 1] inside (2x − 1), grey images replicated to 3 channels, images "
            f"smaller than {min_hw} px upsampled bilinearly to a shorter side of {_UPSAMPLE_TO} px; "
            "lower = more similar"
        )

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to(self.device, torch.float32).clamp(0, 1) * 2 - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        if min(h, w) < LPIPS_NETS[self.net][2]:
            f = _UPSAMPLE_TO / min(h, w)
            x = F.interpolate(x, size=(round(h * f), round(w * f)), mode="bilinear", align_corners=False)
        return x

    def __call__(self, original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS ``[N]`` (CPU, float64) of two batches ``N×C×H×W`` in ``[0, 1]``."""
        check_images(original, reconstruction)
        out = []
        with torch.no_grad():
            for i in range(0, original.shape[0], _CHUNK):
                a = self._prepare(original[i : i + _CHUNK])
                b = self._prepare(reconstruction[i : i + _CHUNK])
                out.append(self.model(a, b, normalize=False).reshape(-1))
        return torch.cat(out).to("cpu", torch.float64)


def lpips_available(net: str = "alex", weights: str | Path | None = None) -> str | None:
    """None when LPIPS-``net`` can run with these weights (the model is then built and cached), else the reason."""
    from privlab.errors import PrivlabError

    try:
        LPIPSMetric(net, weights, None)
    except PrivlabError as e:
        return str(e)
    return None


def lpips_distance(
    original: torch.Tensor,
    reconstruction: torch.Tensor,
    net: str = "alex",
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Per-image LPIPS ``[N]`` of images in ``[0, 1]`` (see :class:`LPIPSMetric`; lower = more similar)."""
    return LPIPSMetric(net, weights, device)(original, reconstruction)


@register_metric(
    "lpips",
    unit=None,
    higher_is_better=False,
    columns={"lpips": (None, False), "lpips-random": (None, False)},
    description="learned perceptual distance (LPIPS v0.1, alex/vgg/squeeze); needs local backbone weights",
)
def _lpips(x: torch.Tensor, y: torch.Tensor, opts: SimilarityOptions) -> MetricOutput:
    metric = LPIPSMetric(opts.lpips_net, opts.lpips_weights, opts.device)
    values = metric(x, y)
    return MetricOutput({metric.name: values}, metric.note)
