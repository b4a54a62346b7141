"""Every Helm release every shipped stack registers, rendered by Helm's own engine from the pinned
chart source (tests/helm_render.py): it renders, every values key the program sets exists in the
chart, and every rendered object passes the strict Kubernetes schema of the stack's version."""

from __future__ import annotations

import pytest

from helm_render import recorded_releases, render, render_recorded, unknown_value_keys
from conftest import STACK_NAMES, synth
from servingstack.tools.check import builtin_group, schema_errors

RELEASES = [(stack, inputs["name"]) for stack in STACK_NAMES for _, inputs in recorded_releases(synth(stack))]


def _release(stack: str, name: str) -> dict:
    return next(inputs for _, inputs in recorded_releases(synth(stack)) if inputs["name"] == name)


def test_shipped_stacks_register_helm_releases():
    charts = {_release(stack, name)["chart"] for stack, name in RELEASES}
    assert charts >= {"nvidia-device-plugin", "dcgm-exporter"}


@pytest.mark.parametrize("stack,name", RELEASES)
def test_release_renders_and_sets_only_keys_the_chart_has(stack, name):
    inputs = _release(stack, name)
    rendered = render_recorded(inputs)
    assert rendered.objects, f"{name} rendered no objects"
    unknown = unknown_value_keys(inputs.get("values") or {}, rendered.defaults, rendered.dependency_conditions)
    assert not unknown, f"{stack}: {name} sets values the chart {inputs['chart']} {inputs['version']} " \
                        f"does not read: {unknown}"


@pytest.mark.parametrize("stack,name", RELEASES)
def test_rendered_objects_pass_the_strict_schemas(stack, name):
    version = synth(stack).config.cluster.version
    failures = []
    for obj in render_recorded(_release(stack, name)).objects:
        assert "apiVersion" in obj and "kind" in obj, f"{name} rendered a document that is no object: {obj}"
        if not builtin_group(obj["apiVersion"]):
            continue  # a custom resource: no schema vendored (its CRD's own tests cover it)
        errors = schema_errors(obj, version)
        if errors:
            failures.append(f"{obj['kind']}/{obj['metadata'].get('name')}: {errors[:3]}")
    assert not failures


def test_unknown_key_detection_can_fail():
    """The oracle itself: a misspelt key of the device plugin chart is reported, a free-form map
    (nodeSelector) and a dependency condition (nfd.enabled) are not."""
    inputs = next(_release(stack, name) for stack, name in RELEASES
                  if _release(stack, name)["chart"] == "nvidia-device-plugin")
    rendered = render(inputs["chart"], inputs["version"], {}, "probe", "probe")
    values = {"migStratgy": "none", "nodeSelector": {"any/label": "x"}, "nfd": {"enabled": False}}
    assert unknown_value_keys(values, rendered.defaults, rendered.dependency_conditions) == ["migStratgy"]
