"""`servingstack synth` and `servingstack cost` on the checked-in stacks, in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from servingstack.tools import cli
from servingstack.config import REDACTED
from conftest import ROOT, STACK_NAMES, set_key, stack_config, write_stack_file

DESIGN_OUTPUTS = {"endpoint", "servingStack", "model", "namespace", "modelStoreBucket", "kubeconfig", "gpuSummary",
                  "monthlyCostUsd"}


def synth_cli(capfd, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["synth", *argv])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_synth_writes_manifests_plan_and_outputs(stack, tmp_path, capfd, at_root):
    out = tmp_path / "out"
    rc, stdout, stderr = synth_cli(capfd, "--stack", stack, "--out", str(out))
    assert rc == cli.EXIT_OK, stderr
    assert "Traceback" not in stderr

    # manifests/: every file is one Kubernetes object or a Helm release, and the serving Deployment is there.
    files = sorted((out / "manifests").glob("*.yaml"))
    docs = [yaml.safe_load(p.read_text()) for p in files]
    assert docs
    for path, doc in zip(files, docs):
        assert ("kind" in doc and "apiVersion" in doc and doc["metadata"]["name"]) or "helmRelease" in doc, path
    kinds = {d.get("kind") for d in docs}
    assert {"Deployment", "Service", "Namespace"} <= kinds

    # plan.json: every registered resource with type, name, parent and inputs; parents form one tree.
    plan = json.loads((out / "plan.json").read_text())
    assert plan["stack"] == stack
    resources = plan["resources"]
    assert resources
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert {"type", "name", "parent", "inputs"} <= r.keys(), r
        assert r["type"] and r["name"] and isinstance(r["inputs"], dict)
        assert r["parent"] in urns or "::pulumi:pulumi:Stack::" in r["parent"], r
    types = {r["type"] for r in resources}
    assert {"servingstack:index:ServingPlatform", "aws:eks/nodeGroup:NodeGroup",
            "kubernetes:apps/v1:Deployment"} <= types

    # outputs.json: what a stack provides, the kubeconfig redacted.
    outputs = json.loads((out / "outputs.json").read_text())
    assert DESIGN_OUTPUTS <= outputs.keys()
    assert outputs["kubeconfig"] == REDACTED
    assert outputs["servingStack"] == stack_config(stack)["servingstack:serving"]["stack"]

    # The summary on stdout agrees with outputs.json.
    gpu = outputs["gpuSummary"]
    assert f"stack {stack}: {len(resources)} resources" in stdout
    assert re.search(rf"^serving:\s+{outputs['servingStack']} {re.escape(outputs['model'])}$", stdout, re.M)
    assert re.search(rf"^gpus:\s+{gpu['gpusPerReplica']} per replica x {gpu['replicas']} replicas on "
                     rf"{gpu['gpuNodes']} x {re.escape(gpu['instanceType'])}$", stdout, re.M), stdout
    assert re.search(rf"^endpoint:\s+{re.escape(outputs['endpoint'])}$", stdout, re.M)
    assert outputs["endpoint"].startswith("http://")
    assert f"wrote {out}/manifests/" in stdout


def test_second_synth_in_process_parents_to_its_own_stack(tmp_path):
    # A fresh interpreter: whether an earlier root Stack lingers depends on what ran before in this one.
    script = ("import sys; from servingstack.tools import cli\n"
              "for stack in ('dev-small', 'prod'):\n"
              "    assert cli.main(['synth', '--stack', stack, '--out', sys.argv[1] + '/' + stack]) == 0\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    resources = json.loads((tmp_path / "prod" / "plan.json").read_text())["resources"]
    root = next(r for r in resources if r["type"] == "servingstack:index:ServingPlatform")
    assert root["parent"] == "urn:pulumi:prod::servingstack::pulumi:pulumi:Stack::servingstack-prod"


def test_synth_summary_numbers_come_from_the_stack_file(tmp_path, capfd, at_root):
    """dev-small: Llama 3.1 8B, 1 GPU per replica, 1 replica, 1 x g6.xlarge."""
    rc, stdout, _ = synth_cli(capfd, "--stack", "dev-small", "--out", str(tmp_path / "out"))
    assert rc == cli.EXIT_OK
    assert re.search(r"^serving:\s+vllm meta-llama/Llama-3.1-8B-Instruct$", stdout, re.M)
    assert re.search(r"^gpus:\s+1 per replica x 1 replicas on 1 x g6\.xlarge$", stdout, re.M)
    assert re.search(r"^endpoint:\s+http://llm\.llm-serving\.svc\.cluster\.local:8000$", stdout, re.M)


def test_synth_default_out_dir_is_build_stack(tmp_path, capfd, monkeypatch):
    path = write_stack_file(tmp_path, stack_config("dev-small"), "mine")
    monkeypatch.chdir(tmp_path)
    rc, stdout, stderr = synth_cli(capfd, "--config", str(path))
    assert rc == cli.EXIT_OK, stderr
    assert (tmp_path / "build" / "mine" / "plan.json").is_file()
    assert json.loads((tmp_path / "build" / "mine" / "plan.json").read_text())["stack"] == "mine"


def test_synth_replaces_stale_manifests(tmp_path, capfd, at_root):
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "manifests" / "stale-thing.yaml").write_text("kind: Stale\n")
    rc, _, _ = synth_cli(capfd, "--stack", "dev-small", "--out", str(out))
    assert rc == cli.EXIT_OK
    assert not (out / "manifests" / "stale-thing.yaml").exists()


# ---- adopting a cluster: create-only keys are ignored with a notice --------------------------------

def adopt_with_vpc_cidr(tmp_path: Path) -> Path:
    cfg = stack_config("dev-small")
    assert cfg["servingstack:cluster"]["create"] is False
    set_key(cfg, "servingstack:cluster.vpcCidr", "10.42.0.0/16")
    set_key(cfg, "servingstack:cluster.singleNatGateway", True)
    return write_stack_file(tmp_path, cfg)


def test_adopting_notice_for_create_only_keys(tmp_path, capfd):
    out = tmp_path / "out"
    rc, stdout, stderr = synth_cli(capfd, "--config", str(adopt_with_vpc_cidr(tmp_path)), "--out", str(out))
    assert rc == cli.EXIT_OK, stderr
    notices = [line for line in stderr.splitlines() if "cluster.vpcCidr" in line]
    assert notices
    assert notices[0].startswith("notice: servingstack:cluster.vpcCidr")
    assert "cluster.singleNatGateway" in notices[0] and "ignored" in notices[0]
    assert "cluster.create is true" in notices[0]
    assert not [line for line in stderr.splitlines() if line.startswith("error")]
    assert (out / "plan.json").is_file()
    # Adopting builds no VPC or cluster: the ignored keys really are ignored.
    types = {r["type"] for r in json.loads((out / "plan.json").read_text())["resources"]}
    assert not any(t.startswith("aws:ec2/vpc:") or t == "aws:eks/cluster:Cluster" for t in types)


def test_adopting_notice_printed_once(tmp_path, capfd):
    rc, _, stderr = synth_cli(capfd, "--config", str(adopt_with_vpc_cidr(tmp_path)), "--out", str(tmp_path / "out"))
    assert rc == cli.EXIT_OK
    assert len([line for line in stderr.splitlines() if "cluster.vpcCidr" in line]) == 1


def test_no_adopting_notice_for_plain_adopt_stack(tmp_path, capfd, at_root):
    rc, _, stderr = synth_cli(capfd, "--stack", "dev-small", "--out", str(tmp_path / "out"))
    assert rc == cli.EXIT_OK
    assert "ignored" not in stderr


# ---- cost ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACK_NAMES)
def test_cost_table_for_each_stack(stack, capfd, at_root):
    rc = cli.main(["cost", "--stack", stack])
    out, err = capfd.readouterr()
    assert rc == cli.EXIT_OK, err
    model = stack_config(stack)["servingstack:serving"]["model"]
    assert out.startswith(f"stack {stack}: {model}")
    for engine in ("vllm", "triton", "nim"):
        assert engine in out
    assert "Total / month" in out


def test_cost_prints_adopting_notice(tmp_path, capfd):
    rc = cli.main(["cost", "--config", str(adopt_with_vpc_cidr(tmp_path))])
    _, err = capfd.readouterr()
    assert rc == cli.EXIT_OK
    assert "notice: servingstack:cluster.vpcCidr" in err
