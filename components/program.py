"""The program body shared by `pulumi up` (__main__.py) and offline synth."""

from __future__ import annotations

from typing import Any

import pulumi

from .config import load_stack_config
from .platform import ServingPlatform


def build() -> dict[str, Any]:
    """Validate the config (raising before any resource exists), build the platform, return outputs."""
    cfg = load_stack_config()
    return ServingPlatform("servingstack", cfg).outputs


def run() -> None:
    for name, value in build().items():
        pulumi.export(name, value)
