"""Issue 12: switching `serving.stack` on a live cluster keeps every Kubernetes object that keeps its
kind, namespace and name — same URN, or an alias the engine resolves to the old URN — for all six
switches between vllm, triton and nim, on every shipped stack file (URNs and aliases as recorded by
the offline recorder, which computes them as the engine does)."""

from __future__ import annotations

import copy
import functools
import itertools

import pytest

from conftest import STACK_NAMES, set_key, stack_config, synth_config

STACKS = ("vllm", "triton", "nim")
SWITCHES = list(itertools.permutations(STACKS, 2))


def _switched(stack_file: str, serving_stack: str) -> dict:
    """The stack file switched to `serving_stack`. Triton's other models (`triton.models`, e.g.
    staging-rag) have no place on a one-model stack: switching away from Triton removes them too
    (the switch alone is refused in one line, test below)."""
    cfg = set_key(stack_config(stack_file), "servingstack:serving.stack", serving_stack)
    if serving_stack != "triton":
        cfg["servingstack:serving"].get("triton", {}).pop("models", None)
    return cfg


@functools.lru_cache(maxsize=None)
def _as(stack_file: str, serving_stack: str):
    return synth_config(_switched(stack_file, serving_stack), name=stack_file)


def _objects(result) -> dict[tuple[str, str, str], object]:
    found = {}
    for r in result.resources:
        if r.is_kubernetes_object:
            meta = r.inputs["metadata"]
            found[(r.inputs["kind"], meta.get("namespace", ""), meta["name"])] = r
    return found


def lost_objects(before, after) -> list[str]:
    """Objects present under the same kind/namespace/name before and after whose new registration
    neither keeps the old URN nor aliases it: the engine would create one and delete the other."""
    old, new = _objects(before), _objects(after)
    lost = []
    for key in sorted(old.keys() & new.keys()):
        if new[key].urn != old[key].urn and old[key].urn not in new[key].options.get("aliases", []):
            lost.append(f"{'/'.join(key)}: {old[key].urn} -> {new[key].urn}")
    return lost


@pytest.mark.parametrize("stack_file", STACK_NAMES)
@pytest.mark.parametrize("source,target", SWITCHES)
def test_switch_keeps_every_shared_object(stack_file, source, target):
    before, after = _as(stack_file, source), _as(stack_file, target)
    shared = _objects(before).keys() & _objects(after).keys()
    # The endpoint is among them: the same Service (and ServiceAccount) across the switch.
    assert ("Service", "llm-serving", "llm") in shared and ("ServiceAccount", "llm-serving", "llm-server") in shared
    assert not lost_objects(before, after)


def test_switching_a_multi_model_triton_stack_alone_is_refused_in_one_line():
    from servingstack.config import ConfigError, parse_stack_config
    from servingstack.tools.synth import engine_config

    with_models = [n for n in STACK_NAMES if stack_config(n)["servingstack:serving"].get("triton", {}).get("models")]
    assert with_models  # staging-rag
    for name in with_models:
        cfg = set_key(stack_config(name), "servingstack:serving.stack", "vllm")
        with pytest.raises(ConfigError) as err:
            parse_stack_config(engine_config(cfg)[0])
        assert str(err.value).startswith("servingstack:serving.triton.models:") and "\n" not in str(err.value)


def test_the_check_fails_without_aliases():
    """The oracle can fail: with the recorded aliases stripped, the Service and ServiceAccount are
    lost on a switch (what pulumi-kubernetes#2948 describes)."""
    before, after = _as("prod", "vllm"), _as("prod", "triton")
    stripped = copy.deepcopy(after)
    for r in stripped.resources:
        r.options.pop("aliases", None)
    lost = lost_objects(before, stripped)
    assert any(line.startswith("Service/llm-serving/llm:") for line in lost)
    assert any(line.startswith("ServiceAccount/llm-serving/llm-server:") for line in lost)


def test_endpoint_moves_only_after_the_new_pods_are_ready():
    """The Service is registered after (depends on) its Deployment, which waits for readiness: on a
    switch the selector moves to pods that serve. It skips its own 10-minute endpoint wait."""
    for stack in STACKS:
        result = _as("dev", stack)
        service = result.one("kubernetes:core/v1:Service")
        deployment = result.one("kubernetes:apps/v1:Deployment")
        assert deployment.urn in service.dependencies
        assert service.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_replaced_deployment_waits_for_the_old_one_only_without_room():
    """dev-small (one L4, one replica) has no room for a second set: the old Deployment is deleted
    before the new one is created; dev (a p4de with 6 free GPUs) starts the new one beside it."""
    assert _as("dev-small", "vllm").one("kubernetes:apps/v1:Deployment").options.get("deleteBeforeReplace") is True
    for stack_file in ("dev", "staging", "prod"):
        dep = _as(stack_file, "vllm").one("kubernetes:apps/v1:Deployment")
        assert not dep.options.get("deleteBeforeReplace"), stack_file


@pytest.mark.parametrize("stack_file,beside", [("prod", True), ("dev-small", False)])
def test_the_diff_says_how_the_deployment_is_replaced(stack_file, beside):
    """servingstack diff of a switch: the shared objects are updates through their aliases (no
    delete of a live object) and the Deployment's outage line follows deleteBeforeReplace."""
    from test_diff import build
    from servingstack.tools.diff import diff_stack

    d = diff_stack(stack_file, build(_as(stack_file, "vllm")), build(_as(stack_file, "triton")))
    assert "delete-of-live-object" not in {h.kind for h in d.hazards}
    (outage,) = [h for h in d.hazards if h.kind == "serving-outage"]
    assert ("beside the old ones" in outage.message) is beside
    assert ("deleteBeforeReplace" in outage.message) is not beside
