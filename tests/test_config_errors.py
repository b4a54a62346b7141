"""Invalid stack configs fail through the real CLI: exit code 2, one line on stderr naming the full
key path (and the bad value where there is one), and nothing written.

Each case starts from a checked-in stack file, changes one thing, and runs
`servingstack synth --config FILE --out DIR` in-process; a few run the installed console script.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import pytest

from servingstack.tools import cli
from conftest import ROOT, set_key, stack_config, write_stack_file

NS = "servingstack:"
SERVINGSTACK = Path(sys.executable).parent / "servingstack"


class Case(NamedTuple):
    id: str
    stack: str
    mutate: Callable[[dict[str, Any]], Any]
    key: str
    """Full key path the message must name (right after `error: `)."""
    mentions: tuple[str, ...] = ()
    """Substrings the message must contain: the bad value, what is allowed or what to change."""
    absent: tuple[str, ...] = ()
    """Substrings the message must not contain (secret values)."""
    pattern: str = ""
    """A regular expression the message must match (for wording that may vary)."""


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda cfg: set_key(cfg, NS + path, value)


def put_all(**paths: Any) -> Callable[[dict[str, Any]], None]:
    """put_all(**{"gpuNodePool.capacityType": ...}): several keys of one conflicting combination."""
    def mutate(cfg: dict[str, Any]) -> None:
        for path, value in paths.items():
            set_key(cfg, NS + path, value)
    return mutate


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(cfg: dict[str, Any]) -> None:
        top, _, rest = path.partition(".")
        if rest:
            del cfg[NS + top][rest]
        else:
            del cfg[NS + top]
    return mutate


def raw(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a stack-file key verbatim (any namespace)."""
    return lambda cfg: cfg.__setitem__(key, value)


CR_ID = "cr-0123456789abcdef0"
L4_POOL = {"name": "l4", "instanceType": "g6.xlarge", "minSize": 0, "maxSize": 1, "desiredSize": 0}
CUSTOM_13B = {"parameters": 13e9, "layers": 40, "hiddenSize": 5120, "attentionHeads": 40, "kvHeads": 5,
              "headDim": 128}

CASES = [
    # ---- wrong enum values
    Case("environment-enum", "prod", put("environment", "production"), "servingstack:environment",
         ("'production'", "'dev', 'staging' or 'prod'")),
    Case("serving-stack-enum", "prod", put("serving.stack", "tgi"), "servingstack:serving.stack",
         ("'tgi'", "'vllm', 'triton' or 'nim'")),
    # ---- unknown keys
    Case("unknown-top-level-key", "prod", put("gpuPool", {"instanceType": "p4de.24xlarge"}), "servingstack:gpuPool",
         ("unknown key", "gpuNodePool")),
    Case("unknown-nested-key-typo", "prod", put("serving.tensorParalelSize", 2),
         "servingstack:serving.tensorParalelSize", ("unknown key",)),
    Case("unknown-key-in-list-item", "prod", put("extraGpuNodePools", [{**L4_POOL, "bogus": 1}]),
         "servingstack:extraGpuNodePools.0.bogus", ("unknown key",)),
    # ---- missing required keys
    Case("missing-environment", "prod", drop("environment"), "servingstack:environment", ("is required",)),
    Case("custom-model-missing-field", "prod",
         put_all(**{"serving.model": "acme/Foo-13B", "serving.customModel": {"parameters": 13e9, "layers": 40}}),
         "servingstack:serving.customModel.hiddenSize", ("is required",)),
    # ---- wrong types
    Case("string-for-int", "prod", put("serving.replicas", "two"), "servingstack:serving.replicas",
         ("'two'", "integer")),
    Case("fraction-for-int", "prod", put("serving.replicas", 2.5), "servingstack:serving.replicas",
         ("2.5", "integer")),
    Case("list-for-object", "prod", raw(NS + "serving", [1, 2]), "servingstack:serving", ("[1,2]", "dictionary")),
    Case("string-not-json-for-object", "prod", raw(NS + "serving", "not json"), "servingstack:serving",
         ("'not json'", "JSON")),
    Case("word-for-bool", "prod", put("serving.enablePrefixCaching", "maybe"),
         "servingstack:serving.enablePrefixCaching", ("'maybe'", "boolean")),
    Case("int-tag-value", "prod", put("tags", {"team": 1}), "servingstack:tags.team", ("1", "string")),
    # ---- out-of-range numbers
    Case("gpu-memory-utilization-1.5", "prod", put("serving.gpuMemoryUtilization", 1.5),
         "servingstack:serving.gpuMemoryUtilization", ("1.5", "0.98")),
    Case("replicas-negative", "prod", put("serving.replicas", -1), "servingstack:serving.replicas",
         ("-1", "greater than or equal to 0")),
    Case("tensor-parallel-0", "prod", put("serving.tensorParallelSize", 0), "servingstack:serving.tensorParallelSize",
         ("0", "greater than or equal to 1")),
    Case("disk-size-20", "prod", put("gpuNodePool.diskSizeGib", 20), "servingstack:gpuNodePool.diskSizeGib",
         ("20", "100")),
    Case("metadata-hop-limit-0", "prod", put("gpuNodePool.metadataHopLimit", 0),
         "servingstack:gpuNodePool.metadataHopLimit", ("0", "greater than or equal to 1")),
    Case("two-problems-counted", "prod", put_all(**{"serving.replicas": -1, "serving.maxNumSeqs": 0}),
         "servingstack:serving.replicas", ("-1", "(and 1 more problem)")),
    # ---- bad strings
    Case("bad-instance-type", "prod", put("gpuNodePool.instanceType", "p9.huge"),
         "servingstack:gpuNodePool.instanceType", ("'p9.huge'", "p4de.24xlarge", "g6.xlarge")),
    Case("bad-public-cidr", "prod", put("cluster.publicAccessCidrs", ["203.0.113.300/24"]),
         "servingstack:cluster.publicAccessCidrs.0", ("'203.0.113.300/24'", "CIDR")),
    Case("bad-vpc-cidr", "prod", put("cluster.vpcCidr", "10.0.0.0"), "servingstack:cluster.vpcCidr",
         ("'10.0.0.0'", "CIDR")),
    Case("k8s-version-1.20", "prod", put("cluster.version", "1.20"), "servingstack:cluster.version", ("'1.20'",)),
    Case("bad-admin-arn", "prod", put("cluster.adminPrincipalArns", ["arn:aws:iam::123:role/x"]),
         "servingstack:cluster.adminPrincipalArns.0", ("'arn:aws:iam::123:role/x'", "ARN")),
    Case("bad-aws-region", "prod", raw("aws:region", "mars-1"), "aws:region", ("'mars-1'",)),
    Case("unknown-model-without-custom-model", "prod", put("serving.model", "acme/Foo-13B"),
         "servingstack:serving.model", ("'acme/Foo-13B'", "customModel")),
    # ---- cross-field conflicts
    Case("min-greater-than-max", "prod", put("gpuNodePool.minSize", 5), "servingstack:gpuNodePool.minSize",
         ("5", "maxSize 3")),
    Case("system-pool-min-greater-than-max", "prod",
         put("cluster.systemNodePool", {"minSize": 5, "maxSize": 3, "desiredSize": 3}),
         "servingstack:cluster.systemNodePool.minSize", ("5", "maxSize 3")),
    Case("extra-pool-min-greater-than-max", "prod",
         put("extraGpuNodePools", [{**L4_POOL, "minSize": 3, "maxSize": 1, "desiredSize": 1}]),
         "servingstack:extraGpuNodePools.0.minSize", ("3", "maxSize 1")),
    Case("desired-outside-range", "prod", put("gpuNodePool.desiredSize", 7), "servingstack:gpuNodePool.desiredSize",
         ("7", "minSize 2", "maxSize 3")),
    Case("capacity-block-without-reservation", "prod",
         put_all(**{"gpuNodePool.capacityType": "CAPACITY_BLOCK", "gpuNodePool.availabilityZone": "us-east-1a"}),
         "servingstack:gpuNodePool.capacityReservationId", ("CAPACITY_BLOCK", "required")),
    Case("capacity-block-on-g5", "dev-small",
         put_all(**{"gpuNodePool.capacityType": "CAPACITY_BLOCK", "gpuNodePool.capacityReservationId": CR_ID,
                    "gpuNodePool.availabilityZone": "us-west-2a", "gpuNodePool.instanceType": "g5.xlarge"}),
         "servingstack:gpuNodePool.instanceType", ("'g5.xlarge'", "capacity block", "p5.48xlarge")),
    Case("capacity-block-of-p4de", "prod",
         put_all(**{"gpuNodePool.capacityType": "CAPACITY_BLOCK", "gpuNodePool.capacityReservationId": CR_ID,
                    "gpuNodePool.availabilityZone": "us-east-1a"}),
         "servingstack:gpuNodePool.instanceType", ("'p4de.24xlarge'", "not sold as a capacity block")),
    Case("capacity-block-outside-its-regions", "prod",
         put_all(**{"gpuNodePool.capacityType": "CAPACITY_BLOCK", "gpuNodePool.capacityReservationId": CR_ID,
                    "gpuNodePool.availabilityZone": "us-east-1a", "gpuNodePool.instanceType": "p4d.24xlarge",
                    "serving.tensorParallelSize": 8}),
         "servingstack:gpuNodePool.capacityType", ("p4d.24xlarge", "us-east-2, us-west-2", "not us-east-1")),
    Case("capacity-block-without-availability-zone", "prod",
         put_all(**{"gpuNodePool.capacityType": "CAPACITY_BLOCK", "gpuNodePool.capacityReservationId": CR_ID,
                    "gpuNodePool.instanceType": "p5.48xlarge"}),
         "servingstack:gpuNodePool.availabilityZone", ("CAPACITY_BLOCK", "required")),
    Case("reservation-id-with-on-demand", "prod", put("gpuNodePool.capacityReservationId", CR_ID),
         "servingstack:gpuNodePool.capacityReservationId", ("ON_DEMAND", "CAPACITY_BLOCK")),
    Case("adopt-cluster-without-name", "dev-small", drop("cluster.name"), "servingstack:cluster.name",
         ("cluster.create is false",)),
    Case("adopt-bucket-without-name", "prod", put("modelStore.create", False), "servingstack:modelStore.bucketName",
         ("modelStore.create is false",)),
    Case("force-destroy-in-prod", "prod", put("modelStore.forceDestroy", True),
         "servingstack:modelStore.forceDestroy", ("true", "only allowed in dev", "prod")),
    Case("time-slicing-in-prod", "prod", put("devicePlugin.timeSlicingReplicas", 4),
         "servingstack:devicePlugin.timeSlicingReplicas", ("4", "only allowed in dev", "prod")),
    Case("time-slicing-on-bottlerocket", "dev",
         put_all(**{"gpuNodePool.amiType": "BOTTLEROCKET_x86_64_NVIDIA", "devicePlugin.timeSlicingReplicas": 2}),
         "servingstack:devicePlugin.timeSlicingReplicas", ("Bottlerocket", "AL2023_x86_64_NVIDIA")),
    Case("open-public-cidr-in-prod", "prod", put("cluster.publicAccessCidrs", ["0.0.0.0/0"]),
         "servingstack:cluster.publicAccessCidrs", ("0.0.0.0/0", "prod")),
    Case("triton-with-s3-weights", "staging", put("serving.weightsSource", "s3"), "servingstack:serving.weightsSource",
         ("s3", "triton", "huggingface")),
    Case("nim-with-s3-weights", "dev", put("serving.weightsSource", "s3"), "servingstack:serving.weightsSource",
         ("s3", "nim", "huggingface")),
    Case("nim-model-without-image", "dev", put("serving.model", "Qwen/Qwen2.5-72B-Instruct"),
         "servingstack:serving.nim.image", ("'Qwen/Qwen2.5-72B-Instruct'",)),
    Case("duplicate-pool-names", "prod", put("extraGpuNodePools", [{**L4_POOL, "name": "gpu"}]),
         "servingstack:extraGpuNodePools", ("'gpu'", "twice")),
    Case("node-pool-names-missing-pool", "prod", put("serving.nodePool", "h100"), "servingstack:serving.nodePool",
         ("'h100'", "gpu")),
    Case("speculative-model-without-token-count", "prod",
         put("serving.vllm.speculativeModel", "meta-llama/Llama-3.2-1B-Instruct"),
         "servingstack:serving.vllm.numSpeculativeTokens", ("speculativeModel",)),
    # ---- the model on its GPUs (sizing)
    Case("70b-does-not-fit-tp1-p4de", "prod", put("serving.tensorParallelSize", 1),
         "servingstack:serving.tensorParallelSize", ("1", "Llama-3.1-70B", "p4de.24xlarge"),
         pattern=r"use tensorParallelSize (>= )?2\b"),
    Case("tp-does-not-divide-heads", "prod", put("serving.tensorParallelSize", 3),
         "servingstack:serving.tensorParallelSize", ("3", "64 attention heads", "1, 2, 4, 8")),
    Case("tp-vs-kv-heads", "prod",
         put_all(**{"serving.model": "acme/Foo-13B", "serving.customModel": CUSTOM_13B,
                    "serving.tensorParallelSize": 4}),
         "servingstack:serving.tensorParallelSize", ("4", "5 KV heads")),
    Case("tp-exceeds-gpus-per-node", "dev-small", put("serving.tensorParallelSize", 8),
         "servingstack:serving.tensorParallelSize", ("8", "g6.xlarge", "<= 1")),
    Case("tp-exceeds-gpus-of-extra-pool", "prod",
         put_all(**{"extraGpuNodePools": [L4_POOL], "serving.nodePool": "l4"}),
         "servingstack:serving.tensorParallelSize", ("2", "g6.xlarge", "<= 1")),
    Case("max-model-len-exceeds-kv-cache", "dev-small", put("serving.maxModelLen", 131072),
         "servingstack:serving.maxModelLen", ("131072", "maxModelLen <=")),
    Case("desired-size-too-small-for-replicas", "prod", put("serving.replicas", 4),
         "servingstack:gpuNodePool.desiredSize", ("2", "4 replicas", ">= 4", "no cluster autoscaler")),
    Case("extra-pool-max-size-too-small", "prod",
         put_all(**{"extraGpuNodePools": [{**L4_POOL, "name": "a10g", "instanceType": "g5.xlarge"}, L4_POOL],
                    "serving.nodePool": "l4", "serving.model": "meta-llama/Llama-3.1-8B-Instruct",
                    "serving.tensorParallelSize": 1, "serving.gpuMemoryUtilization": 0.9}),
         "servingstack:extraGpuNodePools.1.desiredSize", ("0", "2 replicas", ">= 2")),
    # ---- pods must fit their node
    Case("cpu-per-gpu-exceeds-node", "dev-small", put("serving.cpuPerGpu", 8), "servingstack:serving.cpuPerGpu",
         ("8", "g6.xlarge", "cpuPerGpu <= 3")),
    Case("memory-per-gpu-exceeds-node", "dev-small", put("serving.memoryGibPerGpu", 64),
         "servingstack:serving.memoryGibPerGpu", ("64", "g6.xlarge", "memoryGibPerGpu <=")),
    Case("model-cache-exceeds-disk-without-nvme", "prod", put("gpuNodePool.localNvmeRaid0", False),
         "servingstack:gpuNodePool.diskSizeGib", ("200", ">= 222")),
    Case("new-cluster-private-only-endpoint", "prod", put("cluster.publicAccessCidrs", []),
         "servingstack:cluster.publicAccessCidrs", ("private-only", "CIDRs")),
    # ---- observability and autoscaling
    Case("min-replicas-zero-outside-dev", "prod",
         put("autoscaling", {"enabled": True, "minReplicas": 0, "maxReplicas": 3}),
         "servingstack:autoscaling.minReplicas", ("0", "only allowed in dev", "prod")),
    Case("autoscaling-without-prometheus", "prod",
         lambda c: (put("observability", {"prometheus": "none"})(c),
                    put("autoscaling", {"enabled": True, "minReplicas": 2, "maxReplicas": 3})(c)),
         "servingstack:autoscaling.enabled", ("Prometheus", "observability.prometheus: install")),
    Case("cooldown-shorter-than-cold-start", "dev-small", put("autoscaling.cooldownSeconds", 600),
         "servingstack:autoscaling.cooldownSeconds", ("600", "cold-start", "1800")),
    Case("max-replicas-exceed-autoscaled-pool", "dev-small", put("autoscaling.maxReplicas", 2),
         "servingstack:gpuNodePool.maxSize", ("autoscaling.maxReplicas 2", "maxSize to >= 2")),
    Case("prometheus-url-with-install", "prod", put("observability.prometheusUrl", "http://prom.monitoring.svc:9090"),
         "servingstack:observability.prometheusUrl", ("prometheus: existing",)),
    Case("unknown-prometheus-mode", "prod", put("observability.prometheus", "managed"),
         "servingstack:observability.prometheus", ("'managed'", "install")),
    # ---- secrets
    Case("secret-set-in-plaintext", "dev", raw(NS + "ngcApiKey", "nvapi-plain"), "servingstack:ngcApiKey",
         ("plaintext", "pulumi config set --secret servingstack:ngcApiKey"), absent=("nvapi-plain",)),
]


def run_cli(capfd, argv: list[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capfd.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, key: Optional[str] = None) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{err}"
    line = lines[0]
    assert "Traceback" not in line
    assert line.startswith("error: "), line
    if key is not None:
        assert line.startswith(f"error: {key}: "), f"expected key path {key!r} in: {line}"
    return line


def test_at_least_25_distinct_cases():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.key, c.mentions) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_config_fails_in_one_line_and_writes_nothing(case: Case, tmp_path, capfd):
    cfg = stack_config(case.stack)
    case.mutate(cfg)
    path = write_stack_file(tmp_path, cfg)
    out_dir = tmp_path / "out"

    rc, out, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out_dir)])

    assert rc == cli.EXIT_CONFIG, err
    line = assert_one_line_error(err, case.key)
    for text in case.mentions:
        assert text in line, f"{text!r} missing from: {line}"
    for text in case.absent:
        assert text not in line + out, f"{text!r} must not be printed: {line}"
    assert re.search(case.pattern, line), f"{case.pattern!r} does not match: {line}"
    assert not out_dir.exists()


def test_unchanged_stack_files_are_valid(tmp_path, capfd):
    """Guards the table: the starting points themselves pass, so each case fails for its one change."""
    for name in ("prod", "staging", "dev", "dev-small"):
        path = write_stack_file(tmp_path, stack_config(name), name)
        rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / f"out-{name}")])
        assert rc == cli.EXIT_OK, err


def test_cost_command_refuses_invalid_config_too(tmp_path, capfd):
    cfg = set_key(stack_config("prod"), NS + "serving.tensorParallelSize", 3)
    rc, out, err = run_cli(capfd, ["cost", "--config", str(write_stack_file(tmp_path, cfg))])
    assert rc == cli.EXIT_CONFIG
    assert_one_line_error(err, "servingstack:serving.tensorParallelSize")
    assert out == ""


# ---- unreadable stack files: no key path, but the file's path ------------------------------------

def test_missing_stack_file_via_config(tmp_path, capfd):
    path = tmp_path / "Pulumi.nope.yaml"
    out_dir = tmp_path / "out"
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out_dir)])
    assert rc == cli.EXIT_CONFIG
    line = assert_one_line_error(err)
    assert str(path) in line and "cannot read stack file" in line
    assert not out_dir.exists()


def test_missing_stack_file_via_stack_name(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(ROOT)
    out_dir = tmp_path / "out"
    rc, _, err = run_cli(capfd, ["synth", "--stack", "no-such-stack", "--out", str(out_dir)])
    assert rc == cli.EXIT_CONFIG
    line = assert_one_line_error(err)
    assert "Pulumi.no-such-stack.yaml" in line and "cannot read stack file" in line
    assert not out_dir.exists()


@pytest.mark.parametrize("text, expected", [
    ("config: [1, 2\n", "cannot read stack file"),
    ("config: [1, 2]\n", "`config:` map"),
], ids=["yaml-syntax-error", "config-not-a-map"])
def test_malformed_stack_file(tmp_path, capfd, text, expected):
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    out_dir = tmp_path / "out"
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out_dir)])
    assert rc == cli.EXIT_CONFIG
    line = assert_one_line_error(err)
    assert str(path) in line and expected in line
    assert not out_dir.exists()


# ---- the installed console script ---------------------------------------------------------------

def run_script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(SERVINGSTACK), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not SERVINGSTACK.exists(), reason="console script not installed in this environment")
@pytest.mark.parametrize("case_id", ["tensor-parallel-0", "capacity-block-on-g5", "secret-set-in-plaintext"])
def test_console_script_exit_code_2(case_id, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    cfg = stack_config(case.stack)
    case.mutate(cfg)
    path = write_stack_file(tmp_path, cfg)
    out_dir = tmp_path / "out"
    proc = run_script("synth", "--config", str(path), "--out", str(out_dir))
    assert proc.returncode == 2, proc.stderr
    line = assert_one_line_error(proc.stderr, case.key)
    for text in case.mentions:
        assert text in line
    for text in case.absent:
        assert text not in proc.stderr + proc.stdout
    assert not out_dir.exists()


@pytest.mark.skipif(not SERVINGSTACK.exists(), reason="console script not installed in this environment")
def test_console_script_missing_stack_file(tmp_path):
    out_dir = tmp_path / "out"
    proc = run_script("synth", "--stack", "no-such-stack", "--out", str(out_dir))
    assert proc.returncode == 2, proc.stderr
    line = assert_one_line_error(proc.stderr)
    assert "Pulumi.no-such-stack.yaml" in line
    assert not out_dir.exists()
