"""A plugin experiment for the sweep tests: sleeps, logs a seeded value, can fail or kill its own process.

Loaded through $PRIVLAB_PLUGINS (a file path), as a user's own experiment would be.
"""

from __future__ import annotations

import os
import signal
import time

import torch
from pydantic import Field

from privlab.config import ExperimentSpec
from privlab.context import RunContext
from privlab.errors import ConfigError
from privlab.pipelines import PIPELINES
from privlab.store import MetricRecord


class SleepySpec(ExperimentSpec):
    seconds: float = Field(default=0.0, ge=0)
    fail: bool = False
    die: bool = False
    scale: float = 1.0


if "test-sleepy" not in PIPELINES:

    @PIPELINES.register("test-sleepy", spec=SleepySpec, description="test plugin: sleep, then log a seeded value")
    def run(spec: SleepySpec, ctx: RunContext) -> None:
        print(f"sleepy pid {os.getpid()}", flush=True)
        time.sleep(spec.seconds)
        if spec.die:
            os.kill(os.getpid(), signal.SIGKILL)
        if spec.fail:
            raise ConfigError("sleepy was asked to fail (fail: true)")
        value = float(torch.rand(1, generator=ctx.generator()).item()) * spec.scale
        ctx.log_many(
            [
                MetricRecord("value", value, None, "fraction", "utility", True),
                MetricRecord("privacy_leak", spec.scale, None, "fraction", "privacy", False),
            ]
        )
        ctx.save_json("result", "value.json", {"value": value})
