"""Replicas that follow the queue and GPU nodes that follow the pods: a ScaledObject per serving
Deployment on its engine's queue metric, the replicas field left to KEDA, minReplicas 0 only in dev,
and the Cluster Autoscaler with a parliament-clean IAM policy, node-template tags for scaling from
zero, and capacity-block pools left alone. Charts rendered with Helm's engine where it matters."""

from __future__ import annotations

import json

import parliament
import pytest

from conftest import set_key, stack_config, synth, synth_config
from crd_schemas import crd_errors
from helm_render import recorded_releases, render_recorded
from servingstack.config import ConfigError, parse_stack_config
from servingstack.planning import catalog, metrics
from servingstack.tools.synth import engine_config

ON = {"enabled": True, "minReplicas": 2, "maxReplicas": 3}
TAG = "aws:autoscaling/tag:Tag"


def autoscaled(stack: str, **settings):
    cfg = stack_config(stack)
    set_key(cfg, "servingstack:autoscaling", {**ON, **settings})
    if stack != "prod":
        set_key(cfg, "servingstack:gpuNodePool.maxSize", 3)
    return synth_config(cfg, name=stack)


VARIANTS = {"prod": lambda: autoscaled("prod"), "staging": lambda: autoscaled("staging", minReplicas=1),
            "dev": lambda: autoscaled("dev", minReplicas=1), "dev-small": lambda: synth("dev-small")}


def scaled_object(result) -> dict:
    (so,) = [m for m in result.manifests() if m["kind"] == "ScaledObject"]
    return so


@pytest.mark.parametrize("variant", VARIANTS)
def test_scaled_object_targets_the_deployment_on_its_engines_queue(variant):
    result = VARIANTS[variant]()
    cfg = result.config
    so, dep = scaled_object(result), result.manifest("Deployment")
    assert so["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": dep["metadata"]["name"]}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == \
        (cfg.autoscaling.min_replicas, cfg.autoscaling.max_replicas)
    queue = so["spec"]["triggers"][0]
    waiting = {"vllm": "vllm:num_requests_waiting", "nim": "num_requests_waiting",
               "triton": "nv_inference_pending_request_count"}[str(cfg.serving.stack)]
    assert queue["type"] == "prometheus" and queue["metricType"] == "AverageValue"
    assert queue["metadata"]["query"] == \
        f'sum({waiting}{{namespace="{cfg.serving.namespace}",service="{cfg.serving.service_name}"}})'
    assert queue["metadata"]["threshold"] == str(cfg.autoscaling.queue_threshold)
    assert queue["metadata"]["serverAddress"] == cfg.observability.query_url()
    # The metric the engine really exposes, from the catalog of its pinned release.
    assert waiting in metrics.ENGINES[str(cfg.serving.stack)].names
    assert not crd_errors(so)


@pytest.mark.parametrize("variant", VARIANTS)
def test_replicas_are_left_to_keda_and_the_pdb_never_blocks(variant):
    result = VARIANTS[variant]()
    (dep,) = result.of_type("kubernetes:apps/v1:Deployment")
    assert dep.options.get("ignoreChanges") == ["spec.replicas"]
    assert dep.inputs["spec"]["replicas"] == result.config.serving.replicas  # only the count at creation
    for pdb in [m for m in result.manifests() if m["kind"] == "PodDisruptionBudget"]:
        # maxUnavailable, never minAvailable: whatever count KEDA picks, one pod may always be evicted.
        assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    (so,) = result.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert dep.urn in so.dependencies
    keda = next(r for r, i in recorded_releases(result) if i["chart"] == "keda")
    assert keda.urn in so.dependencies and keda.inputs["version"] == catalog.KEDA_CHART_VERSION


def test_without_autoscaling_the_program_owns_replicas():
    (dep,) = synth("prod").of_type("kubernetes:apps/v1:Deployment")
    assert "ignoreChanges" not in dep.options
    assert not synth("prod").of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")


def test_cooldown_outlasts_the_cold_start_budget():
    result = autoscaled("prod")
    auto = result.outputs["autoscaling"]
    so = scaled_object(result)
    assert auto["cooldownSeconds"] > auto["coldStartSeconds"]
    assert so["spec"]["cooldownPeriod"] == auto["cooldownSeconds"]
    behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == auto["cooldownSeconds"]
    # The cold start: node boot + image pull + the pod's own start-up budget (its startup probe).
    dep = result.manifest("Deployment")
    probe = dep["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    startup = probe["failureThreshold"] * probe["periodSeconds"]
    parts = auto["coldStart"]
    assert parts["startupSeconds"] == startup
    assert auto["coldStartSeconds"] == parts["nodeBootSeconds"] + parts["imagePullSeconds"] + startup


def test_scale_to_zero_in_dev_keeps_a_replica_while_it_serves():
    """dev-small scales to zero; a second trigger on requests in flight keeps the replica while it
    serves light traffic (nothing waiting), and the outputs say what the first request waits."""
    result = synth("dev-small")
    so = scaled_object(result)
    assert so["spec"]["minReplicaCount"] == 0
    names = [t["name"] for t in so["spec"]["triggers"]]
    assert names == ["queue", "activity"]
    activity = so["spec"]["triggers"][1]["metadata"]["query"]
    assert "vllm:num_requests_running" in activity and "vllm:num_requests_waiting" in activity
    auto = result.outputs["autoscaling"]
    assert "first request after idle then waits up to 1800 s" in auto["scaleToZero"]
    assert "paused-replicas=1" in auto["scaleToZero"]  # how to wake it: nothing queues at zero


def _load(stack, mutate):
    cfg = stack_config(stack)
    mutate(cfg)
    config, _, _ = engine_config(cfg)
    return parse_stack_config(config)


def test_min_replicas_zero_is_refused_outside_dev_in_one_line():
    with pytest.raises(ConfigError) as err:
        _load("prod", lambda c: set_key(c, "servingstack:autoscaling", {**ON, "minReplicas": 0}))
    message = str(err.value)
    assert "\n" not in message and message.startswith("servingstack:autoscaling.minReplicas: 0 is only allowed in dev")
    assert _load("dev", lambda c: set_key(c, "servingstack:autoscaling", {**ON, "minReplicas": 0, "maxReplicas": 1})
                 ).autoscaling.min_replicas == 0


# ---- the Cluster Autoscaler -------------------------------------------------------------------------

def _policy(result) -> dict:
    (policy,) = [r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if "node-autoscaler" in r.name]
    return json.loads(policy.inputs["policy"])


@pytest.mark.parametrize("variant", ["prod", "dev-small"])
def test_autoscaler_policy_passes_parliament_with_no_findings(variant):
    result = VARIANTS[variant]()
    policy = _policy(result)
    findings = parliament.analyze_policy_string(json.dumps(policy)).findings
    assert not findings, [f"{f.issue}: {f.detail}" for f in findings]
    # Capacity changes only on this stack's autoscaled groups.
    (scale,) = [s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"]]
    asgs = {t.inputs["autoscalingGroupName"] for t in result.of_type(TAG)}
    assert {r.rsplit("/", 1)[-1] for r in scale["Resource"]} == asgs


def test_parliament_oracle_can_fail():
    policy = _policy(synth("dev-small"))
    policy["Statement"][0]["Action"].append("autoscaling:SetDesiredCapacty")
    assert parliament.analyze_policy_string(json.dumps(policy)).findings


def test_gpu_pool_carries_what_scaling_from_zero_needs():
    result = synth("dev-small")
    (group,) = [r for r in result.of_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("pool-")]
    tags = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in result.of_type(TAG)}
    prefix = "k8s.io/cluster-autoscaler/node-template"
    for key, value in group.inputs["labels"].items():
        assert tags[f"{prefix}/label/{key}"] == value
    for taint in group.inputs["taints"]:
        assert tags[f"{prefix}/taint/{taint['key']}"] == f"{taint['value']}:NoSchedule"
    assert tags[f"{prefix}/resources/nvidia.com/gpu"] == str(catalog.INSTANCE_TYPES["g6.xlarge"].gpus)
    # The serving pod's ephemeral-storage request fits the template node.
    dep = result.manifest("Deployment")
    request = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"]
    assert int(request.removesuffix("Gi")) <= int(tags[f"{prefix}/resources/ephemeral-storage"].removesuffix("Gi"))
    assert all(t.inputs["tag"]["propagateAtLaunch"] is False for t in result.of_type(TAG))
    assert group.options.get("ignoreChanges") == ["scalingConfig.desiredSize"]
    assert group.inputs["scalingConfig"]["minSize"] == 0  # idle: no node, no cost


def test_capacity_block_pool_is_never_autoscaled():
    cfg = stack_config("prod")
    set_key(cfg, "servingstack:autoscaling", ON)
    cfg["servingstack:extraGpuNodePools"] = [{
        "name": "block", "instanceType": "p5.48xlarge", "capacityType": "CAPACITY_BLOCK",
        "capacityReservationId": "cr-0123456789abcdef0", "availabilityZone": "us-east-1a",
        "minSize": 1, "maxSize": 1, "desiredSize": 1}]
    result = synth_config(cfg, name="prod")
    groups = {r.name: r for r in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    block, gpu = groups["pool-block-ng"], groups["pool-gpu-ng"]
    # Both ignore desiredSize: the GPU pool because the autoscaler sizes it, the block because EKS
    # scales capacity-block groups to 0 before the block ends (issue 11); only the GPU pool is tagged
    # for and listed in the autoscaler.
    assert block.options["ignoreChanges"] == gpu.options["ignoreChanges"] == ["scalingConfig.desiredSize"]
    tagged = {t.inputs["autoscalingGroupName"] for t in result.of_type(TAG)}
    assert tagged == {"eks-pool-gpu-ng-synth-placeholder"}
    values = render_recorded(next(i for _, i in recorded_releases(result) if i["chart"] == "cluster-autoscaler"))
    (deployment,) = values.of_kind("Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert [a for a in args if a.startswith("--nodes=")] == ["--nodes=2:3:eks-pool-gpu-ng-synth-placeholder"]
    assert result.outputs["autoscaling"]["autoscaledPools"] == ["gpu"]


def test_rendered_autoscaler_scales_only_listed_groups_with_the_matching_image():
    result = synth("dev-small")
    inputs = next(i for _, i in recorded_releases(result) if i["chart"] == "cluster-autoscaler")
    rendered = render_recorded(inputs)
    (deployment,) = rendered.of_kind("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["command"]
    assert not [a for a in args if a.startswith("--node-group-auto-discovery")]  # nothing discovered by tag
    assert [a for a in args if a.startswith("--nodes=")] == ["--nodes=0:1:eks-pool-l4-ng-synth-placeholder"]
    assert "--skip-nodes-with-local-storage=false" in args  # the serving model cache is an emptyDir
    assert container["image"].endswith(":" + catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS[result.config.cluster.version])
    (sa,) = rendered.of_kind("ServiceAccount")
    assert (sa["metadata"]["namespace"], sa["metadata"]["name"]) == ("kube-system", "cluster-autoscaler")
    (assoc,) = [r for r in result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if "node-autoscaler" in r.name]
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == ("kube-system", "cluster-autoscaler")


def test_irsa_cluster_annotates_the_autoscaler_service_account():
    cfg = set_key(stack_config("dev-small"), "servingstack:cluster.podIdentity", False)
    result = synth_config(cfg)
    inputs = next(i for _, i in recorded_releases(result) if i["chart"] == "cluster-autoscaler")
    annotations = inputs["values"]["rbac"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    (role,) = [r for r in result.of_type("aws:iam/role:Role") if "node-autoscaler" in r.name]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    conditions = trust["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in conditions.values()


def test_pool_must_hold_max_replicas_with_a_node_autoscaler():
    with pytest.raises(ConfigError) as err:
        _load("prod", lambda c: set_key(c, "servingstack:autoscaling", {**ON, "maxReplicas": 4}))
    assert str(err.value).startswith("servingstack:gpuNodePool.maxSize: 3 — autoscaling.maxReplicas 4")


# ---- cost at min / expected / max ------------------------------------------------------------------

def test_cost_at_min_expected_and_max_matches_fixed_configs_of_those_sizes():
    """Each point is what the same stack costs when configured by hand at that size (no autoscaling,
    replicas = the point's, desiredSize = its nodes), by the one estimate."""
    from servingstack.config.estimate import estimate
    from servingstack.config.scaling_cost import scaling_costs

    result = autoscaled("prod")
    points = {p.label: p for p in scaling_costs(result.config)}
    assert points["min"].replicas == 2 and points["max"].replicas == 3
    assert points["min"].environment_usd <= points["expected"].environment_usd <= points["max"].environment_usd
    for p in points.values():
        fixed = stack_config("prod")
        set_key(fixed, "servingstack:serving.replicas", p.replicas)
        set_key(fixed, "servingstack:gpuNodePool.desiredSize", p.gpu_nodes)
        e = estimate(_load("prod", lambda c, f=fixed: c.update(f)))
        assert (e.gpu_nodes, round(e.environment_usd, 2)) == (p.gpu_nodes, p.environment_usd), p.label
    assert result.outputs["autoscaling"]["monthlyCost"]["expected"]["environmentUsd"] == \
        points["expected"].environment_usd


def test_expected_replicas_is_where_the_queue_per_replica_meets_the_threshold():
    from servingstack.config.estimate import engine_shape
    from servingstack.config.scaling_cost import expected_replicas
    from servingstack.planning.performance import predict

    for concurrency in (8, 200, 400):
        cfg = stack_config("prod")
        set_key(cfg, "servingstack:autoscaling", {**ON, "minReplicas": 1, "maxReplicas": 3})
        set_key(cfg, "servingstack:workload.concurrency", concurrency)
        parsed = _load("prod", lambda c, f=cfg: c.update(f))
        n = expected_replicas(parsed)
        s, a = parsed.serving, parsed.autoscaling

        def queued(r: int) -> int:
            return predict(s.architecture, parsed.serving_pool.instance, engine_shape(parsed, "vllm"),
                           parsed.workload.per_replica(r)).queued

        assert a.min_replicas <= n <= a.max_replicas
        if n < a.max_replicas:
            assert queued(n) <= a.queue_threshold
        if n > a.min_replicas:
            assert queued(n - 1) > a.queue_threshold


def test_scale_to_zero_costs_nothing_for_gpus_at_min():
    result = synth("dev-small")
    costs = result.outputs["autoscaling"]["monthlyCost"]
    assert costs["min"] == {"replicas": 0, "gpuNodes": 0, "servingUsd": 0.0, "environmentUsd": costs["min"]["environmentUsd"]}
    assert costs["max"]["gpuNodes"] == 1 and costs["max"]["servingUsd"] > 0


def test_summary_and_cost_report_show_min_expected_max(capsys):
    from servingstack.tools.costreport import cost_table
    from servingstack.tools.output import summary

    result = synth("dev-small")
    line = next(l for l in summary(result).splitlines() if l.startswith("scaled:"))
    assert "min 0 replica(s)" in line and "expected 1" in line and "max 1" in line
    table = cost_table(result.config, "dev-small")
    assert [l.split()[0] for l in table.splitlines() if l.startswith("  ") and "replica(s)" in l] == \
        ["min", "expected", "max"]
