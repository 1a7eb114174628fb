"""``none``: the client shares the exact gradient (the baseline every defence is compared with)."""

from __future__ import annotations

from typing import Literal

from privlab.protect.base import PROTECTIONS
from privlab.protect.gradient.base import DefenseConfig, GradientDefense

__all__ = ["NoDefense", "NoDefenseConfig"]


class NoDefenseConfig(DefenseConfig):
    """No defence."""

    name: Literal["none"] = "none"


@PROTECTIONS.register("gradient-none", kind="gradient", config=NoDefenseConfig, description="the exact gradient")
class NoDefense(GradientDefense):
    """Shares the exact gradient."""

    config_class = NoDefenseConfig
