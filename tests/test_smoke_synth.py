"""Every checked-in stack synthesizes, and the recorder really recorded (guards against vacuous runs)."""

from conftest import synth


def test_every_stack_synthesizes_with_resources(stack):
    result = synth(stack)
    types = {r.type for r in result.resources}
    assert "aws:eks/nodeGroup:NodeGroup" in types
    assert "kubernetes:apps/v1:Deployment" in types
    assert result.outputs["servingStack"] in ("vllm", "triton", "nim")
    assert result.outputs["monthlyCostUsd"] > 0
