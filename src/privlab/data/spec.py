"""The data-set part of an experiment spec, and loading its two splits for a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from privlab.config import Spec
from privlab.data import DATASETS, load_dataset
from privlab.data.base import LabelledImages

if TYPE_CHECKING:
    from privlab.context import RunContext

__all__ = ["DatasetSpec", "load_datasets", "load_split"]


class DatasetSpec(Spec):
    """Which data set and how much of it (the data root and download flag are run options, not spec)."""

    name: str = Field(default="digits", description="registered data set (privlab datasets)")
    resize: int | None = Field(default=None, ge=1, description="resize images to resize×resize")
    train_limit: int | None = Field(default=None, ge=1, description="seeded subset of the training split")
    test_limit: int | None = Field(default=None, ge=1, description="seeded subset of the test split")

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        return DATASETS.check_name(name)


def load_split(
    ds: DatasetSpec, split: Literal["train", "test"], ctx: RunContext, *, limited: bool = True
) -> LabelledImages:
    """One split of ``ds`` (its limit, seeded by the run's seed, unless ``limited`` is false; root and download
    from the run)."""
    limit = (ds.train_limit if split == "train" else ds.test_limit) if limited else None
    return load_dataset(
        ds.name, split, root=ctx.data_root, download=ctx.download, resize=ds.resize, limit=limit, seed=ctx.seed
    )


def load_datasets(ds: DatasetSpec, ctx: RunContext) -> tuple[LabelledImages, LabelledImages]:
    """Train and test splits of ``ds`` (limits seeded by the run's seed; root and download from the run)."""
    return load_split(ds, "train", ctx), load_split(ds, "test", ctx)
