"""Render the Helm releases a stack registers with Helm's own engine, from the pinned chart sources.

The program never renders charts: the Kubernetes provider does, on a real `pulumi up`. Here tests
render each recorded `kubernetes:helm.sh/v3:Release` (its chart, version and values as recorded)
with `helm-python-sdk`, which binds Helm's Go SDK (no helm binary), from the unmodified upstream
chart folders in ../shared/charts/<chart>-<version>/ (each names its tag and commit in SOURCE.txt).

Set SERVINGSTACK_CHARTS to another folder of the same shape; where none exists (a user's clone
without ../shared), the tests that need a chart skip with that reason.

Caveats of the SDK (0.2.2): `render` changes the loaded chart (it drops disabled subcharts), so a
chart is loaded afresh for every render; it renders with the SDK's default capabilities
(Kubernetes 1.36, no extra API versions), so templates gated on
`.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"` do not render.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def charts_dir() -> Optional[Path]:
    """The folder of pinned chart sources, or None when this checkout has none."""
    configured = os.environ.get("SERVINGSTACK_CHARTS")
    path = Path(configured) if configured else ROOT.parent / "shared" / "charts"
    return path if path.is_dir() else None


def chart_source(chart: str, version: str) -> Path:
    """The pinned source folder of `chart` at `version`; skips the test when it is absent."""
    base = charts_dir()
    if base is None:
        pytest.skip("no pinned chart sources (../shared/charts or SERVINGSTACK_CHARTS): Helm render tests need them")
    folder = base / f"{chart}-{version}"
    if not folder.is_dir():
        pytest.skip(f"no pinned source for chart {chart} {version} under {base}")
    return folder


@dataclass(frozen=True)
class Rendered:
    chart: str
    version: str
    release: str
    namespace: str
    values: dict[str, Any]
    defaults: dict[str, Any]
    """The chart's own values.yaml."""
    dependency_conditions: frozenset[str]
    """Values paths Chart.yaml names as dependency conditions (valid keys though values.yaml may lack them)."""
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]


def render(chart: str, version: str, values: dict[str, Any], release: str, namespace: str) -> Rendered:
    """Render the pinned chart with Helm's engine; every rendered object, parsed."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's engine) is not installed")
    folder = chart_source(chart, version)
    meta = yaml.safe_load((folder / "Chart.yaml").read_text()) or {}
    conditions = frozenset(c.strip() for d in meta.get("dependencies") or []
                           for c in str(d.get("condition") or "").split(",") if c.strip())
    with helm.Chart.load(str(folder)) as loaded:  # a fresh load per render: render mutates the chart
        defaults = dict(loaded.values or {})
        files = loaded.render(values, name=release, namespace=namespace, is_install=True)
    objects = [doc for path, text in files.items() if not path.endswith("NOTES.txt")  # usage text, not YAML
               for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    return Rendered(chart, version, release, namespace, values, defaults, conditions, objects)


def unknown_value_keys(values: Any, defaults: Any, conditions: frozenset[str] = frozenset(),
                       prefix: str = "") -> list[str]:
    """Key paths set in `values` that the chart's values.yaml does not have. Helm ignores unknown
    keys silently, so a misspelt key is a setting that never takes effect. Below a key whose
    default is not a non-empty map (a free-form map such as nodeSelector, a list, a scalar or
    null), anything goes."""
    if not isinstance(values, dict) or not isinstance(defaults, dict) or not defaults:
        return []
    unknown: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            if path not in conditions and not any(c.startswith(f"{path}.") for c in conditions):
                unknown.append(path)
            continue
        unknown += unknown_value_keys(value, defaults[key], conditions, f"{path}.")
    return unknown


def recorded_releases(result: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(recorded Release, its normalized inputs) for every Helm release a synth result registered."""
    from servingstack.tools.offline.recorder import normalize

    for resource in result.of_type(HELM_RELEASE):
        yield resource, normalize(resource.inputs)


def render_recorded(inputs: dict[str, Any]) -> Rendered:
    """Render a recorded Release exactly as the provider would: its chart, version, values, name
    and namespace."""
    return render(inputs["chart"], inputs["version"], inputs.get("values") or {}, inputs["name"],
                  inputs["namespace"])
