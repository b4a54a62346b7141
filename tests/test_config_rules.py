"""Issue 19, configs that cannot work: every example of the issue, refused through the CLI in one line
naming the key (exit 2, nothing written), and the validators' own oracles (ipaddress, the AWS
provider's config keys, the device plugin's namespace)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple, Union

import pytest
import yaml

from conftest import set_key, stack_config
from hardening import one_error_line, replaced, run_cli
from servingstack.config import ConfigError, parse_stack_config
from servingstack.tools import cli

NS = "servingstack:"
SUBNET = "subnet-0123456789abcdef0"
CUSTOM_13B = {"parameters": 13e9, "layers": 40, "hiddenSize": 5120, "attentionHeads": 40, "kvHeads": 8,
              "headDim": 128}


class Rule(NamedTuple):
    id: str
    stack: str
    change: Union[Callable[[dict[str, Any]], Any], tuple[str, str]]
    """A change to the config map, or (old, new) text replaced in the stack file (for YAML spellings)."""
    key: str
    mentions: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


def put(**paths: Any) -> Callable[[dict[str, Any]], None]:
    def change(cfg: dict[str, Any]) -> None:
        for path, value in paths.items():
            set_key(cfg, NS + path.replace("__", "."), value)
    return change


def raw(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda cfg: cfg.__setitem__(key, value)


def text_of(rule: Rule) -> str:
    if isinstance(rule.change, tuple):
        return replaced(rule.stack, *rule.change)
    cfg = stack_config(rule.stack)
    rule.change(cfg)
    return yaml.safe_dump({"config": cfg}, sort_keys=False, allow_unicode=True, width=1 << 20)


RULES = [
    # ---- the prod endpoint rule on the covered address space, not the string 0.0.0.0/0
    Rule("public-cidrs-two-halves", "prod", put(cluster__publicAccessCidrs=["0.0.0.0/1", "128.0.0.0/1"]),
         "servingstack:cluster.publicAccessCidrs", ("100.0000% of the IPv4 address space", "publicAccessMaxShare")),
    Rule("public-cidr-slash-7", "prod", put(cluster__publicAccessCidrs=["203.0.113.0/24", "44.0.0.0/7"]),
         "servingstack:cluster.publicAccessCidrs", ("0.7813%", "prod API endpoint")),
    Rule("public-cidr-slash-00", "prod", put(cluster__publicAccessCidrs=["0.0.0.0/00"]),
         "servingstack:cluster.publicAccessCidrs.0", ("'0.0.0.0/00'", "write it 0.0.0.0/0")),
    Rule("public-cidr-host-bits", "prod", put(cluster__publicAccessCidrs=["203.0.113.7/24"]),
         "servingstack:cluster.publicAccessCidrs.0", ("host bits", "203.0.113.0/24")),
    Rule("public-cidr-listed-twice", "prod", put(cluster__publicAccessCidrs=["203.0.113.0/24", "203.0.113.0/24"]),
         "servingstack:cluster.publicAccessCidrs.1", ("listed twice",)),
    Rule("public-cidrs-more-than-eks-takes", "staging",
         put(cluster__publicAccessCidrs=[f"203.0.{i}.0/24" for i in range(41)]),
         "servingstack:cluster.publicAccessCidrs", ("at most 40",)),
    # ---- values that passed a check and crashed the code trusting them
    Rule("vpc-cidr-host-bits", "prod", put(cluster__vpcCidr="10.0.0.1/16"), "servingstack:cluster.vpcCidr",
         ("'10.0.0.1/16'", "host bits", "10.0.0.0/16")),
    Rule("vpc-cidr-too-small-for-the-subnet-plan", "prod", put(cluster__vpcCidr="10.0.0.0/24"),
         "servingstack:cluster.vpcCidr", ("/16 to /21",)),
    Rule("pool-zone-outside-region", "prod", put(gpuNodePool__availabilityZone="us-west-2a"),
         "servingstack:gpuNodePool.availabilityZone", ("'us-west-2a'", "aws:region us-east-1")),
    Rule("pool-zone-outside-region-adopted-cluster", "dev-small", put(gpuNodePool__availabilityZone="us-east-1a"),
         "servingstack:gpuNodePool.availabilityZone", ("aws:region us-west-2",)),
    Rule("extra-pool-zone-outside-region", "prod",
         put(extraGpuNodePools=[{"name": "l4", "instanceType": "g6.xlarge", "minSize": 0, "maxSize": 1,
                                 "desiredSize": 0, "availabilityZone": "eu-west-1a"}]),
         "servingstack:extraGpuNodePools.0.availabilityZone", ("aws:region us-east-1",)),
    # ---- system namespaces
    *[Rule(f"serving-namespace-{ns}", "prod", put(serving__namespace=ns), "servingstack:serving.namespace",
           (f"'{ns}'", "system namespace")) for ns in ("kube-system", "default", "kube-public", "kube-node-lease",
                                                        "nvidia-device-plugin")],
    Rule("monitoring-in-the-serving-namespace", "prod", put(observability__namespace="llm-serving"),
         "servingstack:observability.namespace", ("serving.namespace", "restricted")),
    # ---- Python regex pitfalls: "\n"-terminated and non-ASCII digits
    Rule("eks-version-trailing-newline", "prod", put(cluster__version="1.33\n"), "servingstack:cluster.version",
         ("'1.33\\n'",)),
    Rule("eks-version-arabic-indic-digits", "prod", put(cluster__version="١.٣٣"), "servingstack:cluster.version",
         ("Kubernetes minor version",)),
    Rule("vpc-cidr-arabic-indic-digits", "prod", put(cluster__vpcCidr="١٠.0.0.0/16"), "servingstack:cluster.vpcCidr",
         ("not an IPv4 CIDR",)),
    Rule("chart-version-arabic-indic-digits", "prod", put(devicePlugin__chartVersion="٠.١٧.٠"),
         "servingstack:devicePlugin.chartVersion", ("exact chart version",)),
    Rule("chart-version-trailing-newline", "prod", put(devicePlugin__chartVersion="0.17.0\n"),
         "servingstack:devicePlugin.chartVersion", ("'0.17.0\\n'",)),
    Rule("region-trailing-newline", "prod", raw("aws:region", "us-east-1\n"), "aws:region", ("AWS region",)),
    # ---- finite, bounded numbers
    Rule("spot-rate-infinite", "dev-small", ("spotUsdPerHour: 0.35", "spotUsdPerHour: .inf"),
         "servingstack:cost.spotUsdPerHour", ("finite number",)),
    Rule("spot-rate-1e308", "dev-small", ("spotUsdPerHour: 0.35", "spotUsdPerHour: 1e308"),
         "servingstack:cost.spotUsdPerHour", ("1000",)),
    Rule("nim-licence-nan", "dev", put(cost__nimLicenseUsdPerGpuMonth=float("nan")),
         "servingstack:cost.nimLicenseUsdPerGpuMonth", ("finite number",)),
    Rule("utilization-negative-infinity", "prod", put(serving__gpuMemoryUtilization=float("-inf")),
         "servingstack:serving.gpuMemoryUtilization", ("finite number",)),
    Rule("custom-model-hidden-size-unbounded", "prod",
         put(serving__model="acme/Foo-13B", serving__customModel={**CUSTOM_13B, "hiddenSize": 10**9}),
         "servingstack:serving.customModel.hiddenSize", ("65536",)),
    # ---- AWS tags
    Rule("tag-reserved-aws-prefix", "prod", put(tags={"aws:owner": "me"}), "servingstack:tags.aws:owner",
         ("key 'aws:owner'", "reserves")),
    Rule("tag-reserved-aws-prefix-any-case", "prod", put(tags={"AWS:Owner": "me"}), "servingstack:tags.AWS:Owner",
         ("reserves",)),
    Rule("tag-empty-key", "prod", put(tags={"": "x"}), "servingstack:tags.", ("key ''", "1 to 128")),
    Rule("tag-value-300-characters", "prod", put(tags={"team": "t" * 300}), "servingstack:tags.team",
         ("300 characters", "256")),
    Rule("tag-value-100-kb", "prod", put(tags={"blob": "b" * 100_000}), "servingstack:tags.blob", ("256",)),
    Rule("tag-characters", "prod", put(tags={"team": "a;b"}), "servingstack:tags.team", ("characters AWS tags refuse",)),
    Rule("tags-more-than-aws-allows", "prod", put(tags={f"k{i}": "v" for i in range(46)}), "servingstack:tags",
         ("at most 45",)),
    # ---- Kubernetes labels and names
    Rule("label-key-invalid", "prod", put(gpuNodePool__labels={"bad key!": "x"}),
         "servingstack:gpuNodePool.labels.bad key!", ("Kubernetes label key",)),
    Rule("label-key-reserved-prefix", "prod", put(gpuNodePool__labels={"kubernetes.io/role": "gpu"}),
         "servingstack:gpuNodePool.labels.kubernetes.io/role", ("reserves",)),
    Rule("label-key-set-by-servingstack", "prod", put(gpuNodePool__labels={"servingstack.io/pool": "x"}),
         "servingstack:gpuNodePool.labels.servingstack.io/pool", ("set by servingstack",)),
    Rule("label-value-invalid", "prod", put(gpuNodePool__labels={"team": "-x-"}), "servingstack:gpuNodePool.labels.team",
         ("label value",)),
    Rule("label-value-too-long", "prod", put(gpuNodePool__labels={"team": "a" * 64}),
         "servingstack:gpuNodePool.labels.team", ("1 to 63",)),
    Rule("service-name-not-dns-1035", "prod", put(serving__serviceName="8llm"), "servingstack:serving.serviceName",
         ("'8llm'", "DNS-1035")),
    Rule("allowed-namespaces-20000", "prod", put(serving__allowedNamespaces=[f"ns{i}" for i in range(20_000)]),
         "servingstack:serving.allowedNamespaces", ("at most 64",)),
    Rule("allowed-namespace-invalid", "prod", put(serving__allowedNamespaces=["Gateway"]),
         "servingstack:serving.allowedNamespaces.0", ("DNS-1123",)),
    Rule("allowed-namespace-twice", "prod", put(serving__allowedNamespaces=["gateway", "gateway"]),
         "servingstack:serving.allowedNamespaces.1", ("listed twice",)),
    # ---- container arguments
    Rule("extra-arg-empty", "prod", put(serving__vllm__extraArgs=["--enforce-eager", ""]),
         "servingstack:serving.vllm.extraArgs.1", ("is empty",)),
    Rule("extra-arg-multi-line", "prod", put(serving__vllm__extraArgs=["--foo\n--bar"]),
         "servingstack:serving.vllm.extraArgs.0", ("'--foo\\n--bar'", "newline")),
    Rule("extra-args-too-many", "prod", put(serving__vllm__extraArgs=["--x"] * 65),
         "servingstack:serving.vllm.extraArgs", ("at most 64",)),
    # ---- S3 and EKS names
    Rule("bucket-name-adjacent-periods", "prod", put(modelStore__bucketName="my..models"),
         "servingstack:modelStore.bucketName", ("'my..models'", "adjacent periods")),
    Rule("bucket-name-ip-address", "prod", put(modelStore__bucketName="192.168.5.4"),
         "servingstack:modelStore.bucketName", ("IP address",)),
    Rule("bucket-name-reserved-prefix", "prod", put(modelStore__bucketName="xn--models"),
         "servingstack:modelStore.bucketName", ("'xn--'",)),
    Rule("bucket-name-reserved-suffix", "prod", put(modelStore__bucketName="models-s3alias"),
         "servingstack:modelStore.bucketName", ("'-s3alias'",)),
    Rule("cluster-name-with-dot", "dev-small", put(cluster__name="team.prod"), "servingstack:cluster.name",
         ("EKS cluster name",)),
    Rule("subnet-id-invalid", "dev-small", put(cluster__subnetIds=["sub-1"]), "servingstack:cluster.subnetIds.0",
         ("subnet id",)),
    # ---- secrets in plaintext, even where the stack does not use them
    Rule("plaintext-ngc-key-on-a-vllm-stack", "prod", raw(NS + "ngcApiKey", "nvapi-plaintext-123"),
         "servingstack:ngcApiKey", ("plaintext", "pulumi config set --secret servingstack:ngcApiKey"),
         ("nvapi-plaintext-123",)),
    Rule("plaintext-hf-token-on-a-nim-stack", "dev", raw(NS + "hfToken", "hf_plaintext"), "servingstack:hfToken",
         ("plaintext",), ("hf_plaintext",)),
    # ---- strict booleans and integers (YAML 1.2, as the Pulumi CLI reads the file)
    Rule("replicas-yes", "prod", ("    replicas: 2\n", "    replicas: yes\n"), "servingstack:serving.replicas",
         ("'yes'", "integer")),
    Rule("replicas-true", "prod", ("    replicas: 2\n", "    replicas: true\n"), "servingstack:serving.replicas",
         ("True", "a boolean is not an integer")),
    Rule("replicas-quoted", "prod", ("    replicas: 2\n", '    replicas: "2"\n'), "servingstack:serving.replicas",
         ("'2'", "without quotes")),
    Rule("replicas-2.0", "prod", ("    replicas: 2\n", "    replicas: 2.0\n"), "servingstack:serving.replicas",
         ("2.0", "whole number")),
    Rule("prefix-caching-on", "prod", ("    enablePrefixCaching: true\n", "    enablePrefixCaching: on\n"),
         "servingstack:serving.enablePrefixCaching", ("'on'", "true or false")),
    Rule("prefix-caching-1", "prod", ("    enablePrefixCaching: true\n", "    enablePrefixCaching: 1\n"),
         "servingstack:serving.enablePrefixCaching", ("boolean",)),
    Rule("version-as-a-number", "prod", ('    version: "1.35"', '    version: 1.35'),
         "servingstack:cluster.version", ("quote it",)),
    # ---- customModel bounds and consistency
    Rule("custom-model-kv-heads-not-dividing", "prod",
         put(serving__model="acme/Foo-13B", serving__customModel={**CUSTOM_13B, "kvHeads": 7}),
         "servingstack:serving.customModel.kvHeads", ("7 does not divide attentionHeads 40",)),
    Rule("custom-model-kv-heads-above-heads", "prod",
         put(serving__model="acme/Foo-13B", serving__customModel={**CUSTOM_13B, "kvHeads": 80}),
         "servingstack:serving.customModel.kvHeads", ("80",)),
    Rule("custom-model-head-dim-inconsistent", "prod",
         put(serving__model="acme/Foo-13B", serving__customModel={**CUSTOM_13B, "headDim": 1024}),
         "servingstack:serving.customModel.headDim", ("hiddenSize 5120",)),
    # ---- the engine's dtype/quantization pairs (vLLM get_supported_act_dtypes)
    Rule("awq-with-bfloat16", "prod", put(serving__quantization="awq", serving__dtype="bfloat16"),
         "servingstack:serving.dtype", ("bfloat16", "awq", "float16")),
    Rule("gptq-with-bfloat16", "prod", put(serving__quantization="gptq", serving__dtype="bfloat16"),
         "servingstack:serving.dtype", ("gptq",)),
    Rule("fp8-with-float32", "prod", put(serving__quantization="fp8", serving__dtype="float32"),
         "servingstack:serving.dtype", ("fp8", "bfloat16")),
    # ---- start-up budget and weight loading
    Rule("startup-60s-for-131-gib", "prod", put(serving__startupSeconds=60), "servingstack:serving.startupSeconds",
         ("60", "131 GiB", ">= ")),
    Rule("s3-weights-with-safetensors", "prod", put(serving__weightsSource="s3", serving__vllm__loadFormat="safetensors"),
         "servingstack:serving.vllm.loadFormat", ("safetensors", "runai_streamer")),
]


def test_rules_table_is_distinct():
    assert len({r.id for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_config_that_cannot_work_is_refused_in_one_line(rule: Rule, tmp_path, capfd):
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(text_of(rule))
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out)])
    assert rc == cli.EXIT_CONFIG, err
    line = one_error_line(err, rule.key)
    assert f"(in {path}" in line, line
    for text in rule.mentions:
        assert text in line, f"{text!r} missing from: {line}"
    for text in rule.absent:
        assert text not in err + stdout
    assert not out.exists()


# ---- accepted, with a notice where a key is ignored ------------------------------------------------

NOTICES = [
    ("subnet-ids-on-a-new-cluster", "prod", put(cluster__subnetIds=[SUBNET]),
     "notice: servingstack:cluster.subnetIds ignored: it only applies when cluster.create is false"),
    ("pod-identity-on-a-new-cluster", "prod", put(cluster__podIdentity=False),
     "notice: servingstack:cluster.podIdentity ignored: it only applies when cluster.create is false"),
    ("kms-key-on-a-new-bucket", "prod", put(modelStore__kmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/abc-123"),
     "notice: servingstack:modelStore.kmsKeyArn ignored"),
    ("create-only-key-on-an-adopted-cluster", "dev-small", put(cluster__singleNatGateway=True),
     "notice: servingstack:cluster.singleNatGateway ignored: it only applies when cluster.create is true"),
]


@pytest.mark.parametrize("case", NOTICES, ids=[n[0] for n in NOTICES])
def test_ignored_keys_get_a_notice(case, tmp_path, capfd):
    _, stack, change, notice = case
    cfg = stack_config(stack)
    change(cfg)
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": cfg}))
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_OK, err
    assert notice in err


def test_dotted_stack_file_name_derives_a_valid_cluster_name(tmp_path, capfd):
    path = tmp_path / "Pulumi.team.prod.yaml"
    path.write_text((Path(__file__).parent.parent / "stacks" / "Pulumi.prod.yaml").read_text())
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_OK, err
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["stack"] == "team.prod"
    names = [r["inputs"]["name"] for r in plan["resources"] if r["type"] == "aws:eks/cluster:Cluster"]
    assert names == ["servingstack-team-prod"]
    assert re.fullmatch(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}", names[0])


def test_stack_name_too_long_for_the_default_cluster_name(tmp_path, capfd):
    path = tmp_path / f"Pulumi.{'s' * 95}.yaml"
    path.write_text((Path(__file__).parent.parent / "stacks" / "Pulumi.prod.yaml").read_text())
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_CONFIG
    assert "set cluster.name" in one_error_line(err, "servingstack:cluster.name")


@pytest.mark.parametrize("cidrs, share, ok", [
    (["44.0.0.0/8"], None, True),  # one /8: exactly the default share
    (["44.0.0.0/8", "45.0.0.0/24"], None, False),
    (["44.0.0.0/8", "44.1.0.0/16"], None, True),  # overlaps count once
    (["0.0.0.0/1"], 0.5, True),
    (["0.0.0.0/1", "128.0.0.0/2"], 0.5, False),
    (["203.0.113.0/24"], 1 / 2**32, False),
])
def test_prod_endpoint_share_is_configurable(cidrs, share, ok):
    cfg = set_key(stack_config("prod"), NS + "cluster.publicAccessCidrs", cidrs)
    if share is not None:
        set_key(cfg, NS + "cluster.publicAccessMaxShare", share)
    if ok:
        parse_stack_config(cfg)
    else:
        with pytest.raises(ConfigError, match="publicAccessCidrs"):
            parse_stack_config(cfg)


def test_share_rule_is_for_prod_only():
    cfg = set_key(stack_config("staging"), NS + "cluster.publicAccessCidrs", ["0.0.0.0/0"])
    parse_stack_config(cfg)


def test_cidr_checks_agree_with_ipaddress():
    """The validator accepts exactly the canonical networks ipaddress itself writes."""
    import ipaddress

    from servingstack.config.fields import check_cidr

    for text in ["10.0.0.0/16", "0.0.0.0/0", "10.0.0.1/16", "010.0.0.0/16", "10.0.0.0/016", "10.0.0.0/255.255.0.0",
                 "10.0.0.0", "10.0.0.0/33", " 10.0.0.0/16", "10.0.0.0/16\n", "١٠.0.0.0/16", "::/0", "10.0.0.0/8 "]:
        try:
            canonical = str(ipaddress.IPv4Network(text)) == text
        except ValueError:
            canonical = False
        try:
            check_cidr(text)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == canonical, text


def test_aws_provider_keys_match_the_installed_provider():
    import importlib.util

    from servingstack.config.namespaces import AWS_PROVIDER_KEYS

    spec = importlib.util.find_spec("pulumi_aws")
    source = (Path(spec.origin).parent / "config" / "vars.py").read_text()
    assert set(AWS_PROVIDER_KEYS) == set(re.findall(r"__config__\.get\w*\('(\w+)'\)", source))


def test_system_namespaces_include_the_device_plugins():
    from servingstack.config.fields import SYSTEM_NAMESPACES
    from servingstack.k8s.device_plugin import NAMESPACE

    assert NAMESPACE in SYSTEM_NAMESPACES


@pytest.mark.parametrize("key, ok", [
    ("servingstack:serving", True), ("aws:region", True), ("myapp:x", True), ("awsx:vpc", True),
    ("kubernetes:context", True), ("pulumi:disable-default-providers", True), ("servingstack:config:serving", True),
    ("serving", False), ("a:b:c", False), ("servingstak:serving", False), ("ServingStack:serving", False),
    ("serving-stack:serving", False), ("AWS:region", False), ("asw:region", False), ("aws:regoin", False),
])
def test_config_keys_as_the_pulumi_cli_and_aws_provider_read_them(key, ok):
    from servingstack.config.namespaces import check_key

    if ok:
        check_key(key)
    else:
        with pytest.raises(ConfigError):
            check_key(key)


def test_engine_path_refuses_plaintext_secrets_and_near_miss_namespaces():
    """Under `pulumi up` the same checks run on the engine's values (all strings)."""
    from servingstack.tools.synth import engine_config

    config, secret_keys, _ = engine_config(stack_config("prod"))
    with pytest.raises(ConfigError, match="plaintext"):
        parse_stack_config({**config, NS + "hfToken": "hf_x"}, secret_keys=secret_keys)
    parse_stack_config({**config, NS + "hfToken": "hf_x"}, secret_keys=[*secret_keys, NS + "hfToken"])
    with pytest.raises(ConfigError, match="did you mean 'servingstack:gpuNodePool'"):
        parse_stack_config({**config, "servingStack:gpuNodePool": "{}"})


@pytest.mark.parametrize("word, candidates, expected", [
    ("tensorParalelSize", ["tensorParallelSize", "replicas"], "tensorParallelSize"),
    ("REPLICAS", ["replicas"], "replicas"), ("replcias", ["replicas"], "replicas"),
    ("zzz", ["replicas"], None), ("x" * 10_000, ["replicas"], None),
])
def test_did_you_mean(word, candidates, expected):
    from servingstack.config.errors import close_match, did_you_mean

    assert close_match(word, candidates) == expected
    assert (did_you_mean(word, candidates) == f" — did you mean {expected!r}?") if expected else \
        did_you_mean(word, candidates) == ""


@pytest.mark.parametrize("value, expected", [
    ("a\nb", "'a\\nb'"), ("x" * 1000, None), ({"k": "v\n"}, '{"k":"v\\n"}'), (float("inf"), "inf"), (None, "None"),
])
def test_format_value_is_one_bounded_line(value, expected):
    from servingstack.config.errors import MAX_VALUE_CHARS, format_value

    text = format_value(value)
    assert "\n" not in text and len(text) <= MAX_VALUE_CHARS
    if expected is not None:
        assert text == expected
