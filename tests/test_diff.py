"""`servingstack diff` on real pairs of stack files: the shipped stacks against copies with one key
changed, synthesized by the real program; the changes, replacements, costs and hazards it reports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from servingstack.planning.catalog import HOURS_PER_MONTH, INSTANCE_TYPES as GPU_INSTANCES
from servingstack.tools import cli
from servingstack.tools.diff import EXIT_CHANGES, EXIT_CONFIG, EXIT_HAZARDS, EXIT_OK, diff_stack, document
from servingstack.tools.diffsource import Build, synth_git_ref
from servingstack.tools.hazards import KINDS
from servingstack.tools.output import _jsonable, plan_json, write_outputs
from servingstack.tools.plandiff import REPLACE, UPDATE
from servingstack.tools.replacement import identity
from conftest import ROOT, set_key, stack_config, synth, synth_config



def build(result) -> Build:
    return Build(result.stack, json.loads(plan_json(result)), json.loads(json.dumps(_jsonable(result.outputs))))


def base(name: str = "prod") -> Build:
    return build(synth(name))


def changed(name: str, *pairs) -> Build:
    cfg = stack_config(name)
    for key, value in pairs:
        set_key(cfg, key, value)
    return build(synth_config(cfg, name))


def by_name(d, resource: str):
    found = [c for c in d.changes if c.urn.rsplit("::", 1)[-1] == resource]
    assert len(found) <= 1
    return found[0] if found else None


def kinds(d) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for h in d.hazards:
        out.setdefault(h.kind, set()).add(h.urn.rsplit("::", 1)[-1])
    return out


# ---- Must hold: the six pairs ---------------------------------------------------------------------------

def test_instance_type_change_replaces_the_gpu_node_group_and_recycles_its_nodes():
    d = diff_stack("prod", base(), changed("prod", ("servingstack:gpuNodePool.instanceType", "p5.48xlarge")))
    ng = by_name(d, "pool-gpu-ng")
    assert ng.change == REPLACE and ng.replace_paths == ["instanceTypes[0]"]
    assert ng.values["instanceTypes[0]"] == ("p4de.24xlarge", "p5.48xlarge")
    assert "pool-gpu-ng" in kinds(d)["node-recycle"]
    (recycle,) = [h for h in d.hazards if h.kind == "node-recycle"]
    assert "GPU node group" in recycle.message and "replaced" in recycle.message
    # cost follows the instance price: 2 nodes either way
    before, after = d.cost()
    assert after - before == pytest.approx(2 * HOURS_PER_MONTH * (GPU_INSTANCES["p5.48xlarge"].on_demand_usd_per_hour
                                                                  - GPU_INSTANCES["p4de.24xlarge"].on_demand_usd_per_hour),
                                           abs=0.02)


def test_a_tag_added_replaces_no_node_group_or_launch_template():
    b, h = base(), changed("prod", ("servingstack:tags", {"team": "ml-platform"}))
    d = diff_stack("prod", b, h)
    assert d.changes and all(c.change == UPDATE for c in d.changes), [(c.urn, c.change) for c in d.changes]
    for c in d.changes:
        if c.type in ("aws:eks/nodeGroup:NodeGroup", "aws:ec2/launchTemplate:LaunchTemplate"):
            assert c.change == UPDATE
    # Launch templates keep user tags out of their versioned contents (issue 11: instances are tagged
    # by the node group, not by tagSpecifications), so a tag-only change creates no template version
    # and recycles no GPU node (real-deploy-findings #7). The diff's own rule is still exercised:
    # a template whose tagSpecifications changed would roll the groups that depend on it.
    templates = [c for c in d.changes if c.type == "aws:ec2/launchTemplate:LaunchTemplate"]
    versioned = {c.urn for c in templates if any(p != "tags" and not p.startswith("tags.") for p in c.paths)}
    assert not versioned, [(c.urn, c.paths) for c in templates]
    assert all(c.paths for c in templates)  # only the template resource's own tags moved
    rolled = {h.urn for h in d.hazards if h.kind == "node-recycle"}
    assert rolled == set(), rolled
    assert set(kinds(d)) == set()


def _moved_without_alias(b: Build, h: Build) -> set[str]:
    """Independent of the diff code: head Kubernetes objects whose kind/namespace/name existed in the
    base under another URN that no alias of theirs names."""
    def objects(plan):
        return {identity(r["type"], r["inputs"]): r for r in plan["resources"]
                if r["type"].startswith("kubernetes:") and r["custom"] and "metadata" in r["inputs"]}
    old, new = objects(b.plan), objects(h.plan)
    return {r["urn"] for key, r in new.items() if key in old and old[key]["urn"] != r["urn"]
            and old[key]["urn"] not in (r.get("options") or {}).get("aliases", [])}


@pytest.mark.parametrize("target", ["triton", "nim"])
def test_serving_stack_switch_replaces_the_deployment_and_flags_exactly_the_moved_live_objects(target):
    b = base()
    pairs = [("servingstack:serving.stack", target)]
    if target == "nim":
        pairs.append(("servingstack:ngcApiKey", {"secure": "v1:placeholder"}))
    h = changed("prod", *pairs)
    d = diff_stack("prod", b, h)
    deployment = by_name(d, "serving-deployment")
    assert deployment.change == REPLACE
    assert deployment.head["inputs"]["metadata"]["name"].startswith(target)
    hazards = {h.urn for h in d.hazards if h.kind == "delete-of-live-object"}
    # The diff flags exactly the objects that moved without an alias (an independent count), and since
    # the serving components alias each other (issue 12) there are none: the Service `llm` and the
    # ServiceAccount `llm-server` stay the same live objects.
    assert hazards == _moved_without_alias(b, h) == set()


def test_an_alias_to_the_old_urn_means_no_delete_of_the_live_object():
    b, h = base(), changed("prod", ("servingstack:serving.stack", "triton"))
    moved = _moved_without_alias(b, h)
    old_by_identity = {identity(r["type"], r["inputs"]): r["urn"] for r in b.plan["resources"]
                       if r["type"].startswith("kubernetes:") and "metadata" in r["inputs"]}
    for r in h.plan["resources"]:
        if r["urn"] in moved:
            r.setdefault("options", {}).setdefault("aliases", []).append(old_by_identity[identity(r["type"], r["inputs"])])
    d = diff_stack("prod", b, h)
    assert "delete-of-live-object" not in kinds(d)
    for urn in moved:
        change = d.changes and next((c for c in d.changes if c.urn == urn), None)
        assert change is None or change.via == "alias"


def test_replicas_2_to_1_in_prod_is_a_policy_hazard():
    d = diff_stack("prod", base(), changed("prod", ("servingstack:serving.replicas", 1),
                                           ("servingstack:serving.spread", "soft")))
    policy = [h for h in d.hazards if h.kind == "policy-violation"]
    assert policy and all("k8s-serving-ha" in h.message for h in policy)
    assert any("1 replicas" in h.message for h in policy)
    (gpus, _) = d.gpus()
    assert gpus == (4, 2)


def test_the_same_change_in_dev_is_no_policy_hazard():
    """dev enforces the pack as advisory: no new mandatory failure."""
    d = diff_stack("dev", base("dev"), changed("dev", ("servingstack:serving.replicas", 2)))
    assert "policy-violation" not in kinds(d)


def test_bucket_name_changed_in_prod_is_a_protected_bucket_replacement():
    d = diff_stack("prod", base(), changed("prod", ("servingstack:modelStore.bucketName", "acme-prod-llm-models")))
    bucket = by_name(d, "model-store-bucket")
    assert bucket.change == REPLACE and bucket.replace_paths == ["bucket"]
    assert bucket.head["options"]["protect"] is True
    (hazard,) = [h for h in d.hazards if h.kind == "bucket-replaced"]
    assert "protected" in hazard.message
    # the bucket's configuration resources take the new bucket's id: replaced with it
    for child in ("model-store-versioning", "model-store-sse", "model-store-public-access"):
        assert by_name(d, child).change == REPLACE and "bucket" in by_name(d, child).unknown


def test_desired_size_raised_is_an_update_only_and_costs_one_node_more():
    b = base()
    d = diff_stack("prod", b, changed("prod", ("servingstack:gpuNodePool.desiredSize", 3)))
    # A third node is a free slot beside the hard-spread replicas: rolling updates now surge one pod.
    assert [(c.urn.rsplit("::", 1)[-1], c.change, c.paths) for c in d.changes] == \
        [("pool-gpu-ng", UPDATE, ["scalingConfig.desiredSize"]),
         ("serving-deployment", UPDATE, ["spec.strategy.rollingUpdate.maxSurge",
                                         "spec.strategy.rollingUpdate.maxUnavailable"])]
    assert d.hazards == []
    before, after = d.cost()
    price = GPU_INSTANCES[b.outputs["gpuSummary"]["instanceType"]].on_demand_usd_per_hour
    assert after - before == pytest.approx(price * HOURS_PER_MONTH, abs=0.01)
    assert d.gpus()[1] == (2, 3)


# ---- identical inputs, the JSON shape, exit codes ---------------------------------------------------------

@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """base/ and head/ build directories: prod as shipped, and prod with desiredSize 3 / replicas 1."""
    root = tmp_path_factory.mktemp("builds")
    write_outputs(synth("prod"), root / "base" / "prod")
    write_outputs(synth("prod"), root / "same" / "prod")
    cfg = set_key(stack_config("prod"), "servingstack:gpuNodePool.desiredSize", 3)
    write_outputs(synth_config(cfg, "prod"), root / "bigger" / "prod")
    cfg = set_key(set_key(stack_config("prod"), "servingstack:serving.replicas", 1), "servingstack:serving.spread", "soft")
    write_outputs(synth_config(cfg, "prod"), root / "smaller" / "prod")
    return root


def run_cli(capsys, *argv):
    rc = cli.main(["diff", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_identical_inputs_give_an_empty_diff_and_exit_0(builds, capsys):
    rc, out, err = run_cli(capsys, "--base", str(builds / "base"), "--head", str(builds / "same"), "--json")
    assert rc == EXIT_OK, err
    doc = json.loads(out)
    assert doc["stacks"]["prod"]["changes"] == [] and doc["stacks"]["prod"]["hazards"] == []
    rc, out, _ = run_cli(capsys, "--base", str(builds / "base"), "--head", str(builds / "same"))
    assert rc == EXIT_OK and "| prod | no changes |" in out


def test_json_shape(builds, capsys):
    rc, out, err = run_cli(capsys, "--base", str(builds / "base"), "--head", str(builds / "smaller"), "--json")
    assert rc == EXIT_HAZARDS, err
    doc = json.loads(out)
    assert set(doc) == {"stacks"} and set(doc["stacks"]) == {"prod"}
    stack = doc["stacks"]["prod"]
    assert set(stack) == {"monthlyCostUsd", "changes", "hazards"}
    assert set(stack["monthlyCostUsd"]) == {"base", "head"}
    assert all(isinstance(stack["monthlyCostUsd"][k], float) for k in ("base", "head"))
    assert stack["changes"] and stack["hazards"]
    for change in stack["changes"]:
        assert set(change) == {"urn", "type", "change", "paths"}
        assert change["change"] in {"create", "delete", "update", "replace"}
        assert change["urn"].startswith("urn:pulumi:prod::servingstack::") and isinstance(change["paths"], list)
    for hazard in stack["hazards"]:
        assert set(hazard) == {"kind", "urn", "message"} and hazard["kind"] in KINDS and hazard["message"]


def test_changes_without_hazards_exit_3(builds, capsys):
    rc, out, err = run_cli(capsys, "--base", str(builds / "base"), "--head", str(builds / "bigger"))
    assert rc == EXIT_CHANGES, err
    assert "$40,072.69 → $60,109.04 (+$20,036.35)" in out and "`scalingConfig.desiredSize`: `2` → `3`" in out


def test_unknown_stack_or_base_is_a_one_line_usage_error(builds, capsys):
    rc, _, err = run_cli(capsys, "--base", str(builds / "base"), "--head", str(builds / "same"), "--stack", "nope")
    assert rc == EXIT_CONFIG and err.count("\n") == 1 and "nope" in err
    rc, _, err = run_cli(capsys, "--base", "no-such-ref-or-dir", "--head", str(builds / "same"))
    assert rc == EXIT_CONFIG and err.count("\n") == 1 and "neither a directory" in err


def test_a_head_config_error_exits_2(builds, capsys, tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text("name: servingstack\nruntime: python\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text("config:\n  servingstack:bogus: 1\n")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "--base", str(builds / "base"))
    assert rc == EXIT_CONFIG and "servingstack:bogus" in err and "Traceback" not in err


def test_document_leaves_out_failed_stacks():
    ok = diff_stack("a", Build("a", {"resources": []}, {}), Build("a", {"resources": []}, {}))
    failed = diff_stack("b", Build("b", error="boom"), Build("b"))
    assert document([ok, failed]) == {"stacks": {"a": {"monthlyCostUsd": {"base": None, "head": None},
                                                       "changes": [], "hazards": []}}}


# ---- a git ref is synthesized with its own code ------------------------------------------------------------

def test_git_ref_base_runs_the_bases_own_code(tmp_path):
    """A clone whose last commit changes the GPU launch template's description in code: diffing that
    commit against the working tree shows the description change, so the base's code ran."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(repo)], check=True)
    nodepool = repo / "components" / "aws" / "nodepool.py"
    text = nodepool.read_text()
    assert "servingstack GPU pool" in text
    nodepool.write_text(text.replace("servingstack GPU pool", "BASE-CODE GPU pool"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "commit", "--quiet", "-am", "base marker"], check=True)
    side = synth_git_ref("HEAD", ["dev-small"], root=repo)
    assert not side.builds["dev-small"].error, side.builds["dev-small"].error
    descriptions = {r["inputs"].get("description") for r in side.builds["dev-small"].plan["resources"]
                    if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate"}
    assert any(d and d.startswith("BASE-CODE GPU pool") for d in descriptions), descriptions
    assert subprocess.run([*git, "worktree", "list"], capture_output=True, text=True).stdout.count("\n") == 1
    # and the current package was not replaced by the base's
    import servingstack
    assert str(repo) not in servingstack.__file__
    assert sys.modules["servingstack"].__file__ == servingstack.__file__


# ---- secrets, and the engine's rules on synthetic plans -------------------------------------------------------

def test_secret_values_never_reach_the_diff():
    import base64

    from servingstack.tools.diffreport import markdown
    from servingstack.tools.synth import synth_stack

    planted = "hf_PLANTEDsecretVALUE123"
    head = build(synth_stack(stack_config("prod"), "prod", secrets={"hfToken": planted}))
    d = diff_stack("prod", base(), head)
    text = markdown([d], "base", "head") + json.dumps(document([d]))
    for form in (planted, base64.b64encode(planted.encode()).decode()):
        assert form not in text


def _res(urn_name, type_="test:index:Thing", inputs=None, **extra):
    urn = f"urn:pulumi:s::p::{type_}::{urn_name}"
    return {"urn": urn, "type": type_, "name": urn_name, "custom": True, "inputs": inputs or {}, "options": {},
            "dependsOn": [], "propertyDependencies": {}, "computed": {"id": f"{urn_name}-id"}, "provider": "", **extra}


def test_report_hides_values_of_secrets_and_redacted_inputs():
    from servingstack.config import REDACTED
    from servingstack.tools.diffreport import path_text
    from servingstack.tools.plandiff import Change

    secret = Change("u", "kubernetes:core/v1:Secret", UPDATE, paths=["metadata.labels.a"],
                    values={"metadata.labels.a": ("x", "y")})
    assert path_text(secret, "metadata.labels.a") == "`metadata.labels.a`"
    redacted = Change("u", "aws:eks/cluster:Cluster", UPDATE, paths=["version"], values={"version": (REDACTED, "1.34")})
    assert path_text(redacted, "version") == "`version`"
    token = Change("u", "test:index:T", UPDATE, paths=["apiToken"], values={"apiToken": ("a", "b")})
    assert path_text(token, "apiToken") == "`apiToken`"
    plain = Change("u", "aws:eks/cluster:Cluster", UPDATE, paths=["version"], values={"version": ("1.33", "1.34")})
    assert path_text(plain, "version") == "`version`: `1.33` → `1.34`"


def test_launch_template_update_rolls_the_node_group_that_follows_its_latest_version():
    from servingstack.tools.plandiff import PlanDiff

    lt = _res("lt", "aws:ec2/launchTemplate:LaunchTemplate", {"userData": "a"})
    lt["computed"] = {"id": "lt-id", "latestVersion": 1}
    ng = _res("ng", "aws:eks/nodeGroup:NodeGroup", {"launchTemplate": {"id": "lt-id", "version": "1"},
                                                   "scalingConfig": {"maxUnavailable": 1}})
    ng["dependsOn"] = [lt["urn"]]
    ng["propertyDependencies"] = {"launchTemplate": [lt["urn"]]}
    head_lt = {**lt, "inputs": {"userData": "b"}}
    d = PlanDiff({"resources": [lt, ng]}, {"resources": [head_lt, ng]})
    change = d.changes[ng["urn"]]
    assert change.change == UPDATE and change.unknown == ["launchTemplate.version"]
    # the launch template replaced: its id is unknown, and launchTemplate.id is ForceNew
    head_lt = {**lt, "inputs": {"userData": "a", "name": "other"}}
    d = PlanDiff({"resources": [lt, ng]}, {"resources": [head_lt, ng]})
    assert d.changes[ng["urn"]].change == REPLACE and "launchTemplate.id" in d.changes[ng["urn"]].unknown


def test_ignore_changes_and_replace_on_changes_options_are_honoured():
    from servingstack.tools.plandiff import PlanDiff

    old = _res("b", "aws:s3/bucket:Bucket", {"tags": {"a": "1"}, "forceDestroy": False})
    new = _res("b", "aws:s3/bucket:Bucket", {"tags": {"a": "2"}, "forceDestroy": True})
    new["options"] = {"ignoreChanges": ["tags"], "replaceOnChanges": ["forceDestroy"]}
    d = PlanDiff({"resources": [old]}, {"resources": [new]})
    change = d.changes[new["urn"]]
    assert change.paths == ["forceDestroy"] and change.change == REPLACE


def test_a_replaced_kubernetes_provider_replaces_every_resource_it_manages():
    from servingstack.tools.plandiff import PlanDiff

    provider = _res("k8s", "pulumi:providers:kubernetes", {"clusterIdentifier": "a"})
    ns = _res("ns", "kubernetes:core/v1:Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "x"}}, provider=f"{provider['urn']}::k8s-id")
    head_provider = {**provider, "inputs": {"clusterIdentifier": "b"}}
    d = PlanDiff({"resources": [provider, ns]}, {"resources": [head_provider, ns]})
    assert d.changes[provider["urn"]].change == REPLACE
    assert d.changes[ns["urn"]].change == REPLACE and "provider" in d.changes[ns["urn"]].reasons[-1]


def test_a_template_change_that_makes_no_new_version_rolls_no_nodes():
    """Only the template's own `tags`: ComputedIf leaves latestVersion unknown in a preview, but
    tags are not an update key, so apply creates no version and the group keeps its nodes."""
    from servingstack.tools.hazards import stack_hazards
    from servingstack.tools.plandiff import PlanDiff

    lt = _res("lt", "aws:ec2/launchTemplate:LaunchTemplate", {"tags": {"a": "1"}, "userData": "x"})
    lt["computed"] = {"id": "lt-id", "latestVersion": 1}
    ng = _res("ng", "aws:eks/nodeGroup:NodeGroup", {"launchTemplate": {"id": "lt-id", "version": "1"},
                                                   "labels": {"nvidia.com/gpu.present": "true"}})
    ng["dependsOn"] = [lt["urn"]]
    ng["propertyDependencies"] = {"launchTemplate": [lt["urn"]]}
    for inputs, rolls in (({"tags": {"a": "2"}, "userData": "x"}, False), ({"tags": {"a": "1"}, "userData": "y"}, True)):
        d = PlanDiff({"resources": [lt, ng]}, {"resources": [{**lt, "inputs": inputs}, ng]})
        assert d.changes[ng["urn"]].unknown == ["launchTemplate.version"]
        hazards = stack_hazards(d, {}, {})
        assert bool([h for h in hazards if h.kind == "node-recycle"]) is rolls
