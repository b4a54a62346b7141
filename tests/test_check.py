"""`servingstack check` (components/tools/check.py) and `make scan`'s runner (components/tools/scan.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from servingstack.tools import scan
from servingstack.tools.check import (FAIL, PASS, WARN, Row, builtin_group, format_table, policy_resources, run_check,
                              semantic_rows, validate_manifests)
from servingstack.tools.cli import main
from conftest import ROOT, STACK_NAMES, set_key, stack_config, synth, write_stack_file

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


# ---- the command on the checked-in stacks and on violating stack files ----------------------------

@pytest.mark.parametrize("name", STACK_NAMES)
def test_checked_in_stacks_pass(name, tmp_path, capsys):
    rc = run_check(ROOT / "stacks" / f"Pulumi.{name}.yaml", name, tmp_path)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert re.search(r" 0 failed", out)
    rows = [line.split() for line in out.splitlines()]
    checks = {r[0] for r in rows if r}
    # every layer really ran: schema, semantics, policies
    assert {"schema", "selector-labels", "quantities", "k8s-gpu-tensor-parallel", "k8s-image-pinned"} <= checks
    assert (tmp_path / "manifests").is_dir() and (tmp_path / "plan.json").is_file()


def _prod(tmp_path: Path, key: str, value) -> Path:
    return write_stack_file(tmp_path, set_key(stack_config("prod"), key, value), name="prod")


@pytest.mark.parametrize("key,value,policy,message", [
    ("servingstack:serving.replicas", 1, "k8s-serving-ha", "has 1 replicas"),
    ("servingstack:serving.vllm.image", "vllm/vllm-openai:latest", "k8s-image-pinned", "'latest'"),
])
def test_prod_stack_violating_a_mandatory_policy_fails(tmp_path, capsys, key, value, policy, message):
    cfg = set_key(stack_config("prod"), key, value)
    if value == "vllm/vllm-openai:latest":  # the tag names no release: say which one it runs
        set_key(cfg, "servingstack:serving.vllm.release", "0.8.4")
    path = write_stack_file(tmp_path, cfg, name="prod")
    rc = main(["check", "--config", str(path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1
    failing = [line for line in out.splitlines() if re.search(r"\sfail\s", line)]
    assert any(line.startswith(policy) and "Deployment/serving-deployment" in line and message in line
               for line in failing), out
    assert re.search(r" [1-9]\d* failed", out)


def test_same_violation_in_dev_only_warns(tmp_path, capsys):
    config = set_key(stack_config("prod"), "servingstack:serving.replicas", 1)
    config["servingstack:environment"] = "dev"
    path = write_stack_file(tmp_path, config, name="prod-as-dev")
    rc = main(["check", "--config", str(path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert any(line.startswith("k8s-serving-ha") and re.search(r"\swarn\s", line) for line in out.splitlines())


def test_config_error_exits_2(tmp_path, capsys):
    path = _prod(tmp_path, "servingstack:serving.replicaz", 2)
    assert main(["check", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "replicaz" in capsys.readouterr().err


# ---- schema validation --------------------------------------------------------------------------------

def _write(directory: Path, name: str, doc: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(yaml.safe_dump(doc))


def _schema(tmp_path: Path, doc: dict, version: str = "1.33") -> Row:
    _write(tmp_path / "m", "x.yaml", doc)
    rows, _ = validate_manifests(tmp_path / "m", version)
    assert len(rows) == 1
    return rows[0]


PDB_DOC = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "n"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}}


def test_schema_passes_a_valid_object(tmp_path):
    assert _schema(tmp_path, PDB_DOC).result == PASS


def test_schema_fails_a_removed_api_version(tmp_path):
    row = _schema(tmp_path, {**PDB_DOC, "apiVersion": "policy/v1beta1"})
    assert row.result == FAIL and "policy/v1beta1" in row.message


def test_schema_fails_an_unknown_built_in_kind(tmp_path):
    assert _schema(tmp_path, {**PDB_DOC, "apiVersion": "apps/v1", "kind": "Deploymnet"}).result == FAIL


def test_schema_warns_on_a_custom_resource(tmp_path):
    row = _schema(tmp_path, {"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService",
                             "metadata": {"name": "x"}, "spec": {}})
    assert row.result == WARN


def test_schema_is_strict_and_reports_every_error(tmp_path):
    doc = {**PDB_DOC, "spec": {"maxUnavailable": 1, "selectr": {}, "minAvailable": [1]}}
    row = _schema(tmp_path, doc)
    assert row.result == FAIL
    assert "selectr" in row.message and "minAvailable" in row.message


def test_schema_ignores_redacted_values_only(tmp_path):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
              "type": "Opaque", "stringData": "[secret]"}
    assert _schema(tmp_path, secret).result == PASS
    assert _schema(tmp_path / "2", {**secret, "stringData": "plain"}).result == FAIL


def test_helm_release_files_are_not_validated_but_must_pin_the_chart(tmp_path):
    d = tmp_path / "m"
    _write(d, "helmrelease-a.yaml", {"helmRelease": {"name": "a", "namespace": "n", "chart": "c", "version": "0.17.4"}})
    _write(d, "helmrelease-b.yaml", {"helmRelease": {"name": "b", "namespace": "n", "chart": "c", "version": "^0.17"}})
    _write(d, "helmrelease-c.yaml", {"helmRelease": {"name": "c", "namespace": "n", "chart": "c", "version": None}})
    rows, objects = validate_manifests(d, "1.33")
    assert objects == []
    assert [(r.check, r.result) for r in rows] == [("helm-chart-pinned", PASS), ("helm-chart-pinned", FAIL),
                                                   ("helm-chart-pinned", FAIL)]


def test_builtin_groups():
    assert builtin_group("v1") and builtin_group("apps/v1") and builtin_group("networking.k8s.io/v1")
    assert not builtin_group("apps.nvidia.com/v1alpha1") and not builtin_group("karpenter.sh/v1")


# ---- semantic checks ------------------------------------------------------------------------------

def _deployment(**over) -> dict:
    labels = {"app": "vllm"}
    container = {"name": "c", "image": "i:1", "resources": {
        "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "2"},
        "limits": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "2"}}}
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
           "spec": {"selector": {"matchLabels": dict(labels)},
                    "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}}}}
    for path, value in over.items():
        node = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[keys[-1]] = value
    return doc


def _semantic(*docs) -> dict[tuple[str, str], Row]:
    return {(r.check, r.resource): r for r in semantic_rows(list(docs))}


def test_semantics_pass_for_a_consistent_deployment():
    rows = _semantic(_deployment())
    assert {k[0] for k in rows} == {"selector-labels", "quantities", "extended-resources"}
    assert all(r.result == PASS for r in rows.values())


def test_semantics_selector_outside_template_labels():
    rows = _semantic(_deployment(**{"spec.template.metadata.labels": {"app": "not-vllm"}}))
    assert rows[("selector-labels", "Deployment/n/d")].result == FAIL


def test_semantics_bad_quantity():
    rows = _semantic(_deployment(**{"spec.template.spec.containers.0.resources.limits.memory": "48GB"}))
    assert rows[("quantities", "Deployment/n/d")].result == FAIL
    assert "48GB" in rows[("quantities", "Deployment/n/d")].message


def test_semantics_extended_resource_request_differs_from_limit():
    doc = _deployment()
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1"
    rows = _semantic(doc)
    assert rows[("extended-resources", "Deployment/n/d")].result == FAIL
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu")
    rows = _semantic(doc)
    assert "not in limits" in rows[("extended-resources", "Deployment/n/d")].message


def test_semantics_selectors_must_select_pods():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"},
               "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "n"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "vllm"}}}}
    rows = _semantic(_deployment(), service, pdb)
    assert rows[("selects-pods", "Service/n/s")].result == FAIL
    assert rows[("selects-pods", "PodDisruptionBudget/n/p")].result == PASS


# ---- policies on recorded resources ---------------------------------------------------------------

def test_recorded_references_become_property_dependencies():
    result = synth("prod")
    resources = {p.name: p for p in policy_resources(result.resources)}
    sse = resources["model-store-sse"]
    assert [d.name for d in sse.property_dependencies["bucket"]] == ["model-store-bucket"]
    assert sse.parent is not None and sse.parent.name == "model-store"


def test_format_table_has_the_four_columns():
    text = format_table([Row("schema", "Deployment/n/d", PASS, "ok")])
    assert text.splitlines()[0].split() == ["CHECK", "RESOURCE", "RESULT", "MESSAGE"]


def test_makefile_check_target_runs_every_stack():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^check:", makefile, re.M) and re.search(r"^scan:", makefile, re.M)
    assert "servingstack check --config $(STACK_DIR)/Pulumi.$$s.yaml --out $(BUILD_DIR)/$$s --reuse" in makefile
    assert "--waivers policy/checkov-waivers.yaml" in makefile


# ---- make scan: waivers and the checkov gate ---------------------------------------------------------

def test_repo_waiver_list_is_valid():
    waivers, problems = scan.load_waivers(ROOT / "policy" / "checkov-waivers.yaml")
    assert problems == []
    assert all(w.reason for w in waivers)


def test_waivers_need_a_reason_and_never_cover_forbidden_checks(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({"waivers": [
        {"check": "CKV_K8S_16", "reason": "we really need privileged mode here", "resources": ["*"]},
        {"check": "CKV_K8S_22", "reason": ""},
        {"check": "nonsense", "reason": "a reason that is long enough"},
    ]}))
    _, problems = scan.load_waivers(path)
    assert any("CKV_K8S_16" in p and "never" in p for p in problems)
    assert any("CKV_K8S_22" in p and "reason" in p for p in problems)
    assert any("nonsense" in p for p in problems)


def test_annotation_waivers_are_listed_and_forbidden_ones_rejected(tmp_path):
    d = tmp_path / "m"
    ok = _deployment(**{"metadata.annotations": {"checkov.io/skip1": "CKV_K8S_40=vendor image runs as UID 1000"}})
    bad = _deployment(**{"metadata.name": "e", "metadata.annotations": {"checkov.io/skip1": "CKV_K8S_8=slow start"}})
    _write(d, "ok.yaml", ok)
    _write(d, "bad.yaml", bad)
    found, problems = scan.annotation_waivers(d)
    assert ("CKV_K8S_40", "Deployment.n.d", "vendor image runs as UID 1000") in found
    assert len(problems) == 1 and "CKV_K8S_8" in problems[0]


def test_serving_deployments_carry_no_forbidden_waiver(stack, tmp_path):
    from servingstack.tools.output import write_outputs

    write_outputs(synth(stack), tmp_path)
    found, problems = scan.annotation_waivers(tmp_path / "manifests")
    assert problems == []
    assert not {c for c, _, _ in found} & set(scan.NEVER_WAIVED)


def test_failures_pass_only_when_a_waiver_covers_them():
    report = json.dumps({"check_type": "kubernetes", "summary": {"passed": 80, "failed": 2, "skipped": 1,
                                                                 "parsing_errors": 0},
                         "results": {"failed_checks": [
                             {"check_id": "CKV_K8S_22", "resource": "Deployment.llm-serving.nim", "file_path": "/d.yaml"},
                             {"check_id": "CKV2_K8S_6", "resource": "Deployment.other.web", "file_path": "/w.yaml"}]}})
    result = scan.parse_report(report, "build/x/manifests")
    scan.apply_waivers(result, [scan.Waiver("CKV_K8S_22", "NIM writes outside its cache dir",
                                            ("Deployment.llm-serving.*",)),
                                scan.Waiver("CKV2_K8S_6", "not this one", ("Deployment.llm-serving.*",))])
    assert [w[0] for w in result.waived] == ["CKV_K8S_22"]
    assert [f[0] for f in result.unwaived] == ["CKV2_K8S_6"]
    assert any("FAILED  CKV2_K8S_6" in line for line in scan.report_lines(result))
    assert scan.parse_report("Traceback ...", "d").errors


def test_a_forbidden_check_in_a_report_is_never_waived():
    result = scan.parse_report(json.dumps({"results": {"failed_checks": [
        {"check_id": "CKV_K8S_20", "resource": "Deployment.a.b", "file_path": "/x"}]}, "summary": {}}), "d")
    scan.apply_waivers(result, [scan.Waiver("CKV_K8S_20", "sneaked past the loader")])
    assert result.unwaived


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's own virtualenv (.venv-checkov) is absent: `make scan` "
                                                 "and .ci/run create it")
def test_checkov_passes_on_the_synthesized_prod_manifests(tmp_path, capsys):
    from servingstack.tools.output import write_outputs

    write_outputs(synth("prod"), tmp_path)
    rc = scan.main(["--checkov", str(CHECKOV), "--waivers", str(ROOT / "policy" / "checkov-waivers.yaml"),
                    str(tmp_path / "manifests")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "scan: passed" in out and re.search(r": [1-9]\d* passed, 0 failed", out)


# ---- make synth / check --reuse: one synthesis, kept going -------------------------------------------------

def test_check_reuse_checks_the_build_synth_wrote(tmp_path, capsys):
    path = ROOT / "stacks" / "Pulumi.prod.yaml"
    out = tmp_path / "prod"
    assert main(["synth", "--stack", "prod", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", "--stack", "prod", "--out", str(out), "--reuse"]) == 0
    reused = capsys.readouterr().out
    assert main(["check", "--stack", "prod", "--out", str(tmp_path / "fresh")]) == 0
    fresh = capsys.readouterr().out
    assert reused.replace(str(out), "X") == fresh.replace(str(tmp_path / "fresh"), "X")
    assert "k8s-serving-ha" in reused and path.exists()


def test_check_reuse_refuses_a_missing_or_stale_build(tmp_path, capsys):
    rc = main(["check", "--stack", "prod", "--out", str(tmp_path / "none"), "--reuse"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "no synthesized build" in err
    stack_file = write_stack_file(tmp_path, stack_config("prod"), "prod")
    out = tmp_path / "prod"
    assert main(["synth", "--config", str(stack_file), "--out", str(out)]) == 0
    capsys.readouterr()
    import os
    os.utime(out / "plan.json", (1, 1))
    rc = main(["check", "--config", str(stack_file), "--out", str(out), "--reuse"])
    err = capsys.readouterr().err
    assert rc == 1 and "older than" in err


def test_make_synth_goes_on_after_a_failing_stack_and_lists_every_failure(tmp_path):
    """A real `make synth` over three stack files, the first and last broken: the good one is built,
    both failures are listed, the exit status is non-zero; the good build then counts as current until
    its stack file changes (what `make check`/`make scan` rely on to not synthesize again)."""
    import shutil
    import subprocess

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.aa-broken.yaml").write_text("config:\n  servingstack:bogus: 1\n")
    shutil.copy(ROOT / "stacks" / "Pulumi.dev-small.yaml", stacks / "Pulumi.dev-small.yaml")
    (stacks / "Pulumi.zz-broken.yaml").write_text("config:\n  servingstack:environment: nope\n")
    build = tmp_path / "build"
    argv = ["make", "-C", str(ROOT), "--no-print-directory", "synth", f"STACK_DIR={stacks}", f"BUILD_DIR={build}",
            f"VENV={Path(sys.executable).parent.parent}"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert first.returncode != 0
    assert "synth FAILED for: aa-broken zz-broken" in first.stdout, first.stdout + first.stderr
    assert (build / "dev-small" / "plan.json").is_file()
    assert not (build / "aa-broken" / "plan.json").exists()
    # the good build is current: `make -q` (question mode: run nothing) says so
    question = [*argv[:3], "-q", str(build / "dev-small" / "plan.json"), *argv[5:]]
    assert subprocess.run(question, capture_output=True, text=True, timeout=120).returncode == 0
    (stacks / "Pulumi.dev-small.yaml").touch()
    assert subprocess.run(question, capture_output=True, text=True, timeout=120).returncode == 1
