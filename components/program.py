"""The program body shared by `pulumi up` (__main__.py) and offline synth."""

from __future__ import annotations

import gc
from typing import Any

import pulumi

from .config import load_stack_config
from .platform import ServingPlatform


def tune_gc() -> None:
    """Keep CPython's cyclic collector from dominating construction of large programs.

    The provider SDKs leave ~200k objects on the heap at import, and every resource adds long-lived
    objects; with the default thresholds (700, 10, 10) full collections rescan them ever more often
    and construction time grows faster than the number of resources. Freezing what the imports left
    and collecting less often keeps it linear (benchmarks/README.md); a Pulumi program is a
    short-lived process, so the extra garbage held between collections is a few MiB."""
    gc.freeze()
    gc.set_threshold(100_000, 100, 100)


def build() -> dict[str, Any]:
    """Validate the config (raising before any resource exists), build the platform, return outputs."""
    tune_gc()
    cfg = load_stack_config()
    return ServingPlatform("servingstack", cfg).outputs


def run() -> None:
    for name, value in build().items():
        pulumi.export(name, value)
