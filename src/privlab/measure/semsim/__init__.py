"""SemSim: a learned, human-aligned privacy metric for reconstructions (Sun et al.).

- :mod:`~privlab.measure.semsim.model` — the ResNet-18 embedding, checkpoints (safetensors + JSON metadata).
- :mod:`~privlab.measure.semsim.train` — triplet training (paper sampler, PSNR-weighted variant).
- :mod:`~privlab.measure.semsim.score` — the SemSim distance; registers ``semsim`` as a similarity metric.
- :mod:`~privlab.measure.semsim.annotations` — the manifest format and the importer of the original layout.
- :mod:`~privlab.measure.semsim.server` — the local annotation page.
- :mod:`~privlab.measure.semsim.agreement` — agreement of any image metric with human (or proxy) labels.

Every module of this package is imported here (``semsim`` is then a registered image metric).
"""

from privlab.measure.semsim.annotations import (
    Annotation,
    Manifest,
    append_annotation,
    import_folder_layout,
    load_manifest,
    save_manifest,
)
from privlab.measure.semsim.model import SemSimNet, load_semsim, preprocess, save_semsim
from privlab.measure.semsim.score import semsim_distance, set_default_model
from privlab.measure.semsim.train import (
    SemSimTrainConfig,
    TripletData,
    psnr_weighted_triplet_loss,
    train_semsim,
    triplet_loss,
)

__all__ = [
    "Annotation",
    "Manifest",
    "SemSimNet",
    "SemSimTrainConfig",
    "TripletData",
    "append_annotation",
    "import_folder_layout",
    "load_manifest",
    "load_semsim",
    "preprocess",
    "psnr_weighted_triplet_loss",
    "save_manifest",
    "save_semsim",
    "semsim_distance",
    "set_default_model",
    "train_semsim",
    "triplet_loss",
]

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
