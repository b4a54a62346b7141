"""Custom resources held to the CRD schemas of the pinned charts: an oracle nobody here wrote.

kube-prometheus-stack 88.5.3 ships the Prometheus Operator CRDs (ServiceMonitor, PodMonitor,
PrometheusRule, ...) as plain files under charts/crds/crds/; KEDA 2.20.2 ships its CRDs (ScaledObject,
...) as templates, so they are rendered with Helm's engine (tests/helm_render.py). Each CRD's
openAPIV3Schema is made strict the way `kubectl apply --validate=strict` / server-side field
validation treats unknown fields (an object with declared properties admits no others unless it says
x-kubernetes-preserve-unknown-fields), then applied with jsonschema. CEL rules are not evaluated.

PyYAML's safe loader rejects the bare `- =` in crd-alertmanagerconfigs.yaml (YAML 1.1's `=` value
tag, which it resolves but cannot construct): the loader here drops that implicit resolver.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from helm_render import chart_source, render

KPS = ("kube-prometheus-stack", "88.5.3")
KEDA = ("keda", "2.20.2")


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's `=` (value) implicit tag."""


_CrdLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _kps_crds() -> Iterator[dict[str, Any]]:
    folder = chart_source(*KPS) / "charts" / "crds" / "crds"
    for path in sorted(folder.glob("crd-*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_CrdLoader):  # noqa: S506 - a SafeLoader subclass
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                yield doc


def _keda_crds() -> Iterator[dict[str, Any]]:
    yield from render(*KEDA, {}, "keda", "keda").of_kind("CustomResourceDefinition")


@functools.lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every CRD version the pinned charts serve."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in [*_kps_crds(), *_keda_crds()]:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                found[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return found


def strict(schema: Any) -> Any:
    """A copy of a structural schema in which objects with declared properties admit no others."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Schema errors of a custom resource against its pinned CRD; fails when no CRD serves it."""
    key = (doc["apiVersion"], doc["kind"])
    schemas = crd_schemas()
    if key not in schemas:
        pytest.fail(f"no pinned CRD serves {key}")
    validator = jsonschema.Draft7Validator(schemas[key])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)]
