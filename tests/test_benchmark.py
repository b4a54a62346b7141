"""servingstack:benchmark: config, the Job's manifests (strict schemas, restricted Pod Security, the
serving NetworkPolicy admits it), its write-only IAM role (parliament, nothing writable elsewhere),
re-runs, and the uploader's script. The real load generator runs in tests/test_bench_e2e.py."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import kubernetes_validate
import parliament
import pytest

import aiperf_env
import pod_security
from conftest import ROOT, set_key, stack_config, synth, synth_config, write_stack_file
from servingstack.config import ConfigError, parse_stack_config, secret_needed
from servingstack.config.benchmark import (
    METADATA_FILE,
    benchmark_metadata,
    benchmark_plan,
    config_document,
    tool_version,
)
from servingstack.planning import catalog
from servingstack.serving.benchmark_spec import aiperf_args, upload_script
from servingstack.tools.synth import engine_config

STACKS = ["prod", "staging", "dev", "dev-small"]


def enabled(stack: str, **benchmark) -> dict:
    return set_key(stack_config(stack), "servingstack:benchmark", {"enabled": True, **benchmark})


def parsed(raw: dict):
    config, _, _ = engine_config(raw)
    return parse_stack_config(config)


@pytest.fixture(scope="module")
def results():
    return {s: synth_config(enabled(s), s) for s in STACKS}


def job_pod(result) -> dict:
    return result.manifest("Job")["spec"]["template"]


# ---- config --------------------------------------------------------------------------------

def test_off_by_default_adds_nothing(stack):
    result = synth(stack)
    assert not [r for r in result.resources if "enchmark" in r.type or "benchmark" in r.name]
    assert "benchmark" not in result.outputs


@pytest.mark.parametrize("key,value,words", [
    ("image", "nvcr.io/nvidia/aiperf:latest", "latest"),
    ("image", "nvcr.io/nvidia/aiperf", "no tag"),
    ("uploaderImage", "amazon/aws-cli", "no tag"),
    ("concurrency", [1, 8, 8], "twice"),
    ("concurrency", [0], "from 1 to 4096"),
    ("requestsPerConcurrency", 10, "greater than or equal to 20"),
    ("runId", "Run_1", "pattern"),
    ("tokenizer", "not a repo", "pattern"),
])
def test_bad_benchmark_config_is_one_line(key, value, words):
    with pytest.raises(ConfigError) as err:
        parsed(enabled("prod", **{key: value}))
    assert str(err.value).startswith(f"servingstack:benchmark.{key}") and words in str(err.value)
    assert "\n" not in str(err.value)


def test_cross_section_rules():
    with pytest.raises(ConfigError, match=r"^servingstack:benchmark\.enabled: true needs serving\.replicas >= 1"):
        parsed(set_key(enabled("prod"), "servingstack:serving.replicas", 0))
    raw = set_key(enabled("prod"), "servingstack:workload", {"inputTokens": 8000, "outputTokens": 1000})
    with pytest.raises(ConfigError, match="more than serving.maxModelLen 8192"):
        parsed(raw)


def test_pinned_by_digest_is_accepted():
    digest = "nvcr.io/nvidia/aiperf@sha256:" + "a" * 64
    cfg = parsed(enabled("prod", image=digest))
    assert cfg.benchmark.image == digest


def test_sweep_always_includes_the_workload_and_sends_20x_requests():
    cfg = parsed(set_key(enabled("prod", concurrency=[1, 8, 64]), "servingstack:workload", {"concurrency": 48}))
    plan = benchmark_plan(cfg, "prod")
    assert [p.concurrency for p in plan.points] == [1, 8, 48, 64]
    assert all(p.requests == 20 * p.concurrency and p.warmup_requests == p.concurrency for p in plan.points)
    assert [p.concurrency for p in benchmark_plan(parsed(enabled("prod")), "prod").points] == [1, 8, 32, 64]


def test_default_image_is_the_tools_own_pin():
    assert catalog.AIPERF_IMAGE == f"nvcr.io/nvidia/aiperf:{catalog.AIPERF_VERSION}"
    assert tool_version(catalog.AIPERF_IMAGE) == catalog.AIPERF_VERSION
    assert tool_version("nvcr.io/nvidia/aiperf@sha256:" + "0" * 64) is None
    # ... and the tests' own AIPerf (every package pinned) is that version too.
    assert aiperf_env.constraints_pin() == catalog.AIPERF_VERSION


def test_metadata_carries_a_config_that_validates_to_the_same_stack():
    for stack in STACKS:
        cfg = parsed(enabled(stack))
        meta = benchmark_metadata(cfg, benchmark_plan(cfg, stack))
        again = parse_stack_config({("aws:region" if k == "region" else f"servingstack:{k}"): v
                                    for k, v in meta["config"].items()})
        assert again == cfg
        assert meta["stack"] == stack and meta["servingStack"] == str(cfg.serving.stack)
        assert meta["tool"] == {"name": "aiperf", "version": catalog.AIPERF_VERSION, "image": cfg.benchmark.image}
        text = json.dumps(meta)
        assert "hfToken" not in text and "ngcApiKey" not in text


def test_legacy_monthly_licence_key_survives_the_round_trip():
    raw = set_key(enabled("dev"), "servingstack:cost", {"nimLicenseUsdPerGpuMonth": 300})
    cfg = parsed(raw)
    doc = config_document(cfg)
    assert "nimLicenseUsdPerGpuYear" not in doc["cost"]
    assert parse_stack_config({("aws:region" if k == "region" else f"servingstack:{k}"): v
                               for k, v in doc.items()}) == cfg


def test_gated_tokenizer_needs_the_hf_token():
    assert secret_needed(parsed(enabled("dev")))["hfToken"] is True  # NIM serving Llama: the tokenizer is gated
    assert secret_needed(parsed(stack_config("dev")))["hfToken"] is False
    public = parsed(enabled("dev", tokenizer="Qwen/Qwen2.5-72B-Instruct"))
    assert secret_needed(public)["hfToken"] is False


# ---- the Job -------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_the_strict_schemas(results, stack):
    result = results[stack]
    version = result.config.cluster.version
    kinds = []
    for m in result.manifests():
        if (m["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "benchmark":
            kubernetes_validate.validate(m, version, strict=True)
            kinds.append(m["kind"])
    assert sorted(kinds) == ["ConfigMap", "Job", "NetworkPolicy", "ServiceAccount"]


@pytest.mark.parametrize("stack", STACKS)
def test_job_meets_restricted_pod_security_and_requests_no_gpu(results, stack):
    result = results[stack]
    ns = result.manifest("Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = job_pod(result)
    assert pod_security.violations(pod["spec"], pod["metadata"].get("annotations")) == []
    job = result.manifest("Job")
    assert job["metadata"]["namespace"] == ns["metadata"]["name"]
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        for amounts in c["resources"].values():
            assert not any("gpu" in k for k in amounts)
    assert not pod["spec"].get("tolerations") and not pod["spec"].get("nodeSelector")  # never on a GPU node
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["restartPolicy"] == "Never"


def test_the_restricted_checks_can_fail(results):
    pod = job_pod(results["prod"])["spec"]
    mutations = {
        "privilege escalation": lambda s: s["initContainers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
        "capabilities": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
        "running as non-root": lambda s: (s["securityContext"].pop("runAsNonRoot"),),
        "running as non-root user": lambda s: s["securityContext"].update(runAsUser=0),
        "seccomp": lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "hostPath volumes": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "host namespaces": lambda s: s.update(hostNetwork=True),
        "privileged containers": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
    }
    for control, mutate in mutations.items():
        spec = json.loads(json.dumps(pod))
        mutate(spec)
        found = pod_security.violations(spec)
        assert any(v.startswith(control) for v in found), (control, found)


def test_serving_pods_meet_restricted_pod_security_too(stack):
    template = synth(stack).manifest("Deployment")["spec"]["template"]
    assert pod_security.violations(template["spec"], template["metadata"].get("annotations")) == []


def _matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels + matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        have = e["key"] in labels
        ok = {"In": have and labels.get(e["key"]) in e.get("values", []),
              "NotIn": not have or labels.get(e["key"]) not in e.get("values", []),
              "Exists": have, "DoesNotExist": not have}[e["operator"]]
        if not ok:
            return False
    return True


def _admitted(policies: list[dict], namespaces: dict[str, dict], target_ns: str, target: dict, port: int,
              peer_ns: str, peer: dict) -> bool:
    """NetworkPolicy ingress semantics: a pod selected by no Ingress policy takes any traffic; else some
    rule of a selecting policy must match the peer (pod/namespace selectors) and the port."""
    selecting = [p for p in policies if p["metadata"]["namespace"] == target_ns
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and _matches(p["spec"]["podSelector"], target)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") in (port, None) for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for f in peers:
                ns_ok = (_matches(f["namespaceSelector"], namespaces[peer_ns]) if "namespaceSelector" in f
                         else peer_ns == target_ns)
                pod_ok = _matches(f["podSelector"], peer) if "podSelector" in f else True
                if "ipBlock" not in f and ns_ok and pod_ok:
                    return True
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_serving_network_policy_admits_the_job(results, stack):
    result = results[stack]
    ns = result.manifest("Namespace")
    name = ns["metadata"]["name"]
    namespaces = {name: {**(ns["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}}
    policies = [m for m in result.manifests() if m["kind"] == "NetworkPolicy"]
    assert policies
    target = result.manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    peer = job_pod(result)["metadata"]["labels"]
    plan = benchmark_plan(result.config, stack)
    ports = [8000] + ([8002] if plan.serving_stack == "triton" else [])  # + Triton's metrics (--server-metrics)
    for port in ports:
        assert _admitted(policies, namespaces, name, target, port, name, peer), port
    # ... and the evaluator can say no: a pod of another namespace is not admitted.
    namespaces["elsewhere"] = {"kubernetes.io/metadata.name": "elsewhere"}
    assert not _admitted(policies, namespaces, name, target, 8000, "elsewhere", peer)
    # Nothing restricts the Job's egress (the Service, S3, STS, the tokenizer's hub) ...
    assert not [p for p in policies if "Egress" in p["spec"].get("policyTypes", [])
                and _matches(p["spec"]["podSelector"], peer)]
    # ... and nothing reaches the benchmark pod, not even from its own namespace.
    assert not _admitted(policies, namespaces, name, peer, 8000, name, target)
    assert not _admitted(policies, namespaces, name, peer, 8000, name, peer)


@pytest.mark.parametrize("stack", STACKS)
def test_job_drives_the_environments_own_service(results, stack):
    result = results[stack]
    svc = result.manifest("Service")
    inits = job_pod(result)["spec"]["initContainers"]
    for c in inits:
        url = c["args"][c["args"].index("--url") + 1]
        assert url == result.outputs["endpoint"]
        assert url == f"http://{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local:8000"
        assert c["image"] == catalog.AIPERF_IMAGE and c["command"] == ["aiperf"]
    plan = benchmark_plan(result.config, stack)
    assert [c["args"] for c in inits] == [aiperf_args(plan, p, f"/results/{p.directory}") for p in plan.points]
    assert inits[0]["args"][inits[0]["args"].index("--wait-for-model-timeout") + 1] == "1800"


def test_job_waits_for_the_server_and_its_credentials(results):
    result = results["prod"]
    job = result.one("kubernetes:batch/v1:Job")
    deployment = result.one("kubernetes:apps/v1:Deployment")
    association = [r for r in result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                   if r.inputs["serviceAccount"] == "benchmark"]
    assert association
    # depends_on a component waits for its children: the ready Deployment, the role, its policy and
    # its Pod Identity association (credentials must exist when the pod is admitted).
    access = next(r for r in result.resources if r.type == "servingstack:index:BenchmarkWriteAccess")
    children = [r.urn for r in result.resources if r.parent == access.urn]
    assert deployment.urn in job.dependencies and len(children) == 3
    assert set(children) <= set(job.dependencies) and association[0].urn in children
    assert job.options.get("deleteBeforeReplace") is True
    assert result.manifest("Job")["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_run_id_reruns_with_a_new_job(results):
    again = synth_config(enabled("prod", runId="2026-12-01"), "prod")
    assert again.manifest("Job")["metadata"]["name"] == "benchmark-2026-12-01"
    assert results["prod"].manifest("Job")["metadata"]["name"] == "benchmark-1"
    assert again.outputs["benchmark"]["runId"] == "2026-12-01"


def test_metadata_config_map_is_mounted_and_uploaded(results):
    result = results["staging"]
    cm = result.manifest("ConfigMap", "benchmark-1")
    meta = json.loads(cm["data"][METADATA_FILE])
    assert meta["servingStack"] == "triton" and meta["endpoint"]["path"] == "/v2/models/llama-70b/generate_stream"
    assert meta["tokenCounts"] == "client"
    upload = job_pod(result)["spec"]["containers"][0]
    assert {"name": "config", "mountPath": "/config", "readOnly": True} in upload["volumeMounts"]
    assert {"name": "config", "configMap": {"name": "benchmark-1"}} in job_pod(result)["spec"]["volumes"]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert env["PREFIX"] == "benchmarks/staging/" and env["BUCKET"] == result.outputs["modelStoreBucket"]


# ---- the role ------------------------------------------------------------------------------

def _write_policy(result) -> dict:
    access = next(r for r in result.resources if r.type == "servingstack:index:BenchmarkWriteAccess")
    (policy,) = [r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if r.parent == access.urn]
    return json.loads(policy.inputs["policy"])


def _access_level(action: str) -> str:
    prefix, name = action.split(":")
    service = next(s for s in parliament.iam_definition if s["prefix"] == prefix)
    return next(p["access_level"] for p in service["privileges"] if p["privilege"] == name)


@pytest.mark.parametrize("stack", STACKS)
def test_role_passes_parliament_and_writes_only_under_the_prefix(results, stack):
    result = results[stack]
    policy = _write_policy(result)
    findings = parliament.analyze_policy_string(json.dumps(policy)).findings
    assert findings == [], [(f.issue, f.detail) for f in findings]
    bucket = f"arn:aws:s3:::{result.outputs['modelStoreBucket']}"
    key = next(r for r in result.of_type("aws:kms/key:Key")) if result.of_type("aws:kms/key:Key") else None

    def allowed(action: str, resource: str) -> bool:
        return any(s["Effect"] == "Allow" and action in s["Action"]
                   and any(fnmatch.fnmatchcase(resource, pattern) for pattern in s["Resource"])
                   for s in policy["Statement"])

    levels = {a: _access_level(a) for s in policy["Statement"] for a in s["Action"]}
    assert set(levels.values()) == {"Write"}  # nothing to read, list, tag or delegate
    for s in policy["Statement"]:
        for action in s["Action"]:
            if action.startswith("s3:"):
                assert s["Resource"] == [f"{bucket}/benchmarks/{stack}/*"] and "Condition" not in s
            else:
                assert action in ("kms:GenerateDataKey", "kms:Decrypt")
                assert s["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{result.config.region}.amazonaws.com"}
                assert s["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [
                    bucket, f"{bucket}/benchmarks/{stack}/*"]
    assert allowed("s3:PutObject", f"{bucket}/benchmarks/{stack}/20261201T120000Z/c0032/profile_export_aiperf.json")
    for elsewhere in ("models/meta-llama/Llama-3.1-70B-Instruct/config.json", "models/triton/llm/config.pbtxt",
                      "benchmarks/other-stack/x.json", f"benchmarks/{stack}"):
        assert not allowed("s3:PutObject", f"{bucket}/{elsewhere}"), elsewhere
    assert not allowed("s3:DeleteObject", f"{bucket}/benchmarks/{stack}/x")
    if key is not None:  # the bucket key makes S3 use the bucket ARN as the encryption context
        sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        assert sse.inputs["rules"][0]["bucketKeyEnabled"] is True


def test_role_is_bound_to_the_benchmark_service_account_only():
    irsa = synth_config(set_key(enabled("prod"), "servingstack:cluster.podIdentity", False), "prod")
    access = next(r for r in irsa.resources if r.type == "servingstack:index:BenchmarkWriteAccess")
    (role,) = [r for r in irsa.of_type("aws:iam/role:Role") if r.parent == access.urn]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (cond,) = [v for k, v in trust["Statement"][0]["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert cond == "system:serviceaccount:llm-serving:benchmark"
    sa = irsa.manifest("ServiceAccount", "benchmark")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert not [r for r in irsa.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if r.inputs["serviceAccount"] == "benchmark"]


# ---- the uploader's script -----------------------------------------------------------------

def test_upload_script_copies_results_and_metadata_under_a_timestamp(tmp_path):
    """The script itself, run by /bin/sh with a recording `aws` on PATH (it records its argv: the
    script's inputs to the CLI; S3 is not emulated)."""
    results_dir, config_dir, bin_dir = tmp_path / "results", tmp_path / "config", tmp_path / "bin"
    for d in (results_dir / "c0001", config_dir, bin_dir):
        d.mkdir(parents=True)
    (config_dir / METADATA_FILE).write_text("{}")
    (results_dir / "c0001" / "profile_export_aiperf.json").write_text("{}")
    recorder = bin_dir / "aws"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n')
    recorder.chmod(recorder.stat().st_mode | stat.S_IEXEC)
    script = upload_script().replace("/results", str(results_dir)).replace("/config", str(config_dir))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BUCKET": "b", "PREFIX": "benchmarks/prod/"}
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    argv = (tmp_path / "argv").read_text().split("\n")
    assert argv[:3] == ["s3", "cp", str(results_dir)]
    dest = argv[3]
    assert fnmatch.fnmatchcase(dest, "s3://b/benchmarks/prod/2???????T??????Z/") and "--recursive" in argv
    assert (results_dir / METADATA_FILE).read_text() == "{}"
    assert f"benchmark results: {dest}" in proc.stdout
    failing = recorder.read_text().replace("> ", "; exit 3 #")
    recorder.write_text(failing)
    assert subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True).returncode != 0


def test_report_refuses_what_is_not_the_tools_output(tmp_path):
    from servingstack.tools.cli import main

    (tmp_path / "profile_export_aiperf.json").write_text(json.dumps({"hello": 1}))
    assert main(["bench", "report", str(tmp_path)]) == 2
    assert main(["bench", "report", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["bench", "report", str(tmp_path / "empty")]) == 2


def test_synth_summary_says_where_results_land(results):
    from servingstack.tools.output import summary

    text = summary(results["prod"])
    assert ("benchmark: Job benchmark-1 (aiperf 0.13.0, concurrency 1, 8, 32, 64) -> "
            f"s3://{results['prod'].outputs['modelStoreBucket']}/benchmarks/prod/<timestamp>/") in text
    assert "benchmark:" not in summary(synth("prod"))


# ---- the project's own gates on a stack with the benchmark on --------------------------------

@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_servingstack_check_passes_with_the_benchmark(stack, tmp_path, capsys):
    """`servingstack check` (strict schemas, semantic checks, the policy pack) on a benchmark-enabled
    stack: the Job, its ConfigMap, ServiceAccount, NetworkPolicy and role are checked like the rest."""
    from servingstack.tools.check import run_check

    path = write_stack_file(tmp_path, enabled(stack), name=stack)
    rc = run_check(path, stack, tmp_path / "out")
    out = capsys.readouterr().out
    assert rc == 0, out
    assert re.search(r" 0 failed", out) and (tmp_path / "out" / "manifests").is_dir()
    names = [p.name for p in (tmp_path / "out" / "manifests").iterdir()]
    assert any("benchmark" in n for n in names), names


CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's own virtualenv (.venv-checkov) is absent: `make scan` "
                                                 "creates it; .ci/run does not install checkov")
def test_checkov_passes_on_the_benchmark_manifests(results, tmp_path, capsys):
    """checkov (an independent reading of the pod-security controls, among others) on the Job's
    manifests, with only the waivers the Job carries (their reasons are in its annotations)."""
    from servingstack.tools import scan
    from servingstack.tools.output import write_outputs

    write_outputs(results["prod"], tmp_path)
    manifests = tmp_path / "manifests"
    for f in manifests.iterdir():
        if "benchmark" not in f.name:
            f.unlink()
    assert len(list(manifests.iterdir())) == 4
    rc = scan.main(["--checkov", str(CHECKOV), "--waivers", str(ROOT / "policy" / "checkov-waivers.yaml"),
                    str(manifests)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "scan: passed" in out and re.search(r": [1-9]\d* passed, 0 failed", out)
