"""The offline recorder: URNs as the engine makes them, resource options recorded beside the inputs
(protect, retainOnDelete, ignoreChanges, aliases resolved to URNs, timeouts), and plan.json that is
the same bytes for the same inputs."""

from __future__ import annotations

import json

import pulumi
import pytest

from servingstack.tools.offline.recorder import engine_urn, run_program
from servingstack.tools.output import plan_json
from conftest import STACK_NAMES, stack_config
from servingstack.tools.synth import synth_stack


@pytest.mark.parametrize("name", STACK_NAMES)
def test_plan_json_is_the_same_bytes_for_the_same_inputs(name):
    first = plan_json(synth_stack(stack_config(name), name))
    second = plan_json(synth_stack(stack_config(name), name))
    assert first == second
    resources = json.loads(first)["resources"]
    assert [r["urn"] for r in resources] == sorted(r["urn"] for r in resources)


def test_urns_carry_the_whole_parent_type_chain_and_no_stack_type():
    """resource.NewURN: the parent's qualified type (every ancestor's type, joined by $), nothing
    for the root Stack."""
    assert engine_urn("s", "p", "", "a:b:C", "n") == "urn:pulumi:s::p::a:b:C::n"
    stack_urn = "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"
    assert engine_urn("s", "p", stack_urn, "a:b:C", "n") == "urn:pulumi:s::p::a:b:C::n"
    parent = "urn:pulumi:s::p::x:i:Outer$x:i:Inner::inner"
    assert engine_urn("s", "p", parent, "aws:s3/bucket:Bucket", "b") == \
        "urn:pulumi:s::p::x:i:Outer$x:i:Inner$aws:s3/bucket:Bucket::b"


def _program_with_aliases() -> dict:
    class Box(pulumi.ComponentResource):
        def __init__(self, name: str, opts=None):
            super().__init__("test:index:Box", name, None, opts)
            pulumi.CustomResource("test:index:Thing", f"{name}-thing", {"x": 1},
                                  opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True,
                                                              ignore_changes=["x"]))
            self.register_outputs({})

    Box("new-box", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old-box")]))
    return {}


def test_options_and_aliases_are_recorded_as_the_engine_resolves_them():
    result = run_program(_program_with_aliases, {}, [], "dev", "us-east-1")
    box = result.one("test:index:Box")
    thing = result.one("test:index:Thing")
    assert box.urn == "urn:pulumi:dev::servingstack::test:index:Box::new-box"
    assert box.options["aliases"] == ["urn:pulumi:dev::servingstack::test:index:Box::old-box"]
    assert thing.urn == "urn:pulumi:dev::servingstack::test:index:Box$test:index:Thing::new-box-thing"
    # the child inherits its parent's alias, its name's parent prefix renamed with it
    assert thing.options["aliases"] == ["urn:pulumi:dev::servingstack::test:index:Box$test:index:Thing::old-box-thing"]
    assert thing.options["protect"] is True and thing.options["retainOnDelete"] is True
    assert thing.options["ignoreChanges"] == ["x"]


def test_plan_json_records_options_beside_inputs(tmp_path):
    plan = json.loads(plan_json(synth_stack(stack_config("prod"), "prod")))
    by_name = {r["name"]: r for r in plan["resources"]}
    bucket = by_name["model-store-bucket"]
    assert bucket["options"]["protect"] is True and bucket["options"]["retainOnDelete"] is True
    deployment = by_name["serving-deployment"]
    assert deployment["options"]["customTimeouts"]["create"].endswith("m")
    assert all(set(r) >= {"urn", "type", "inputs", "options", "dependsOn", "parent"} for r in plan["resources"])
