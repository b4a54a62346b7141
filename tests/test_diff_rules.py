"""The replacement rules (components/tools/replacement_rules.yaml): an entry with its source for every
resource type the program can register, and every path in it a real input of that type, checked
against the installed SDKs (pulumi-aws 7.51 Args classes, pulumi-kubernetes Args classes) and, for
Kubernetes objects, Kubernetes' own strict OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pulumi
import pytest

from servingstack.tools.check import builtin_group

from servingstack.tools.replacement import (MissingRuleError, covers, identity, is_kubernetes_object, load_rules,
                                            missing_rule_message, rule_for)
from conftest import ROOT, STACK_NAMES, set_key, stack_config, synth, synth_config

PACKAGE = ROOT / "components"
PROVIDER_MODULES = ("pulumi_aws", "pulumi_kubernetes")
TOKEN = re.compile(r"__init__\(\s*['\"]([^'\"]+)['\"]")


def _type_token(cls: type) -> str | None:
    """The type token a pulumi_aws / pulumi_kubernetes resource class registers with."""
    match = TOKEN.search(inspect.getsource(cls))
    if not match:
        return None
    token = match.group(1)
    return f"pulumi:providers:{token}" if issubclass(cls, pulumi.ProviderResource) else token


def _resolve(chain: list[str], aliases: dict[str, str]):
    module_name = aliases.get(chain[0])
    if module_name is None:
        return None
    obj = importlib.import_module(module_name)
    for part in chain[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def statically_registered_types() -> dict[str, str]:
    """Every provider resource class the package instantiates (`aws.eks.NodeGroup(...)`,
    `k8s.Provider(...)`, ...), by type token, with where it is first called; plus every component type
    token (`servingstack:index:...` string literals passed to Component.__init__)."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in PROVIDER_MODULES:
                        aliases[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PROVIDER_MODULES:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"servingstack:index:[A-Z]\w+", node.value):
                found.setdefault(node.value, where)
            if not isinstance(node, ast.Call):
                continue
            chain, func = [], node.func
            while isinstance(func, ast.Attribute):
                chain.insert(0, func.attr)
                func = func.value
            if not isinstance(func, ast.Name):
                continue
            chain.insert(0, func.id)
            try:
                obj = _resolve(chain, aliases)
            except ImportError:
                obj = None
            if inspect.isclass(obj) and issubclass(obj, pulumi.CustomResource):
                token = _type_token(obj)
                if token:
                    found.setdefault(token, where)
    return found


STATIC = statically_registered_types()


def recorded_types() -> dict[str, str]:
    """Types the shipped stacks and variants that reach the other code paths register."""
    found = {r.type: f"stack {name}" for name in STACK_NAMES for r in synth(name).resources}
    variants = {
        "nim": ("prod", "servingstack:serving.stack", "nim"),
        "triton": ("prod", "servingstack:serving.stack", "triton"),
    }
    for label, (name, key, value) in variants.items():
        for r in synth_config(set_key(stack_config(name), key, value), name).resources:
            found.setdefault(r.type, f"stack {name} with {key}={value}")
    return found


def test_the_scan_finds_the_types_the_program_obviously_registers():
    """The static scan is not vacuous: it sees the node group, the Kubernetes provider, the Helm
    release and a component type where they are created."""
    for token in ("aws:eks/nodeGroup:NodeGroup", "pulumi:providers:kubernetes", "kubernetes:helm.sh/v3:Release",
                  "kubernetes:apps/v1:Deployment", "servingstack:index:GpuNodePool"):
        assert token in STATIC, sorted(STATIC)


def test_every_type_the_program_can_register_has_replacement_rules():
    types = {**recorded_types(), **STATIC}
    missing = []
    for token, where in sorted(types.items()):
        try:
            rule_for(token)
        except MissingRuleError:
            missing.append(missing_rule_message(token, where))
    assert not missing, "\n".join(missing)


def test_a_new_type_fails_with_what_to_add_and_where():
    with pytest.raises(MissingRuleError) as err:
        rule_for("aws:ec2/securityGroup:SecurityGroup")
    text = missing_rule_message("aws:ec2/securityGroup:SecurityGroup", "components/aws/x.py:12")
    assert str(err.value).startswith("components/tools/replacement_rules.yaml has no entry for "
                                     "aws:ec2/securityGroup:SecurityGroup")
    for needle in ("components/aws/x.py:12", '"aws:ec2/securityGroup:SecurityGroup":', "types:", "source:",
                   "replaceOn:", "identity:"):
        assert needle in text


def test_every_entry_names_its_source():
    for token, rule in load_rules().items():
        assert rule.source.get("repository") and rule.source.get("file"), token
        commit = rule.source.get("commit")
        assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit), token
        if commit is None:
            assert rule.source.get("read"), f"{token}: without a commit, say what was read"


# ---- every path is a real input -----------------------------------------------------------------------

def _aws_args(token: str):
    """The resource's own Args class and its module (nested input types resolve there: a package-level
    name can be another type's nested input, e.g. s3's legacy BucketServerSideEncryptionConfigurationArgs)."""
    import sys

    import pulumi_aws

    package, cls = token.split(":")[1].split("/")[0], token.rsplit(":", 1)[1]
    resource = getattr(getattr(pulumi_aws, package), cls)
    module = sys.modules[resource.__module__]
    # The module's own Args class (named <Cls>InitArgs where <Cls>Args is taken by a nested input type).
    (name,) = [n for n in module.__all__ if n.endswith("Args")]
    return getattr(module, name), module


def _args_has_path(args_cls, module, path: str) -> bool:
    """Walk an SDK Args class by Pulumi (camelCase) names, following the nested Args types."""
    cls = args_cls
    for part in path.split("."):
        props = {getattr(v.fget, "_pulumi_name", k): v for k, v in vars(cls).items()
                 if isinstance(v, property) and v.fget is not None}
        if part not in props:
            return False
        annotation = str(props[part].fget.__annotations__.get("return", ""))
        nested = re.findall(r"ForwardRef\('(\w+Args)'\)", annotation)
        cls = getattr(module, nested[0], None) if nested else None
        if cls is None and part != path.split(".")[-1]:
            return False
    return True


def _k8s_schema_has_path(token: str, path: str) -> bool:
    from kubernetes_validate import utils

    group_version, kind = token.split(":")[1], token.rsplit(":", 1)[1]
    group, _, version = group_version.rpartition("/")
    api = f"{group.split('.')[0]}-{version}" if group and group != "core" else version
    full = [v for v in utils.all_versions() if utils.major_minor(v) == "1.33"][-1]
    folder = f"kubernetes-json-schema/v{full}-local-strict"
    schema = utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", "1.33")
    bundle = utils.schema_contents(f"{folder}/_definitions.json", "1.33")
    definitions = bundle.get("definitions") or bundle["$defs"]
    node = schema
    for part in path.split("."):
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        if node.get("type") == "array" or "items" in node:
            node = node.get("items", node)
            while "$ref" in node:
                node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = props[part]
    return True


def _rule_paths(rule) -> list[str]:
    paths = [*rule.replace_on, *rule.optional_computed, *rule.identity, *rule.rolls_nodes_on, *rule.new_version_on]
    paths += [c.path for c in rule.conditionals] + [c.unless_stable for c in rule.conditionals if c.unless_stable]
    for spec in rule.computed_on_change.values():
        paths += [p for p in (spec or {}).get("except", []) if p not in ("defaultVersion",)]
    return sorted(set(paths))


@pytest.mark.parametrize("token", sorted(t for t in load_rules() if t.startswith("aws:")))
def test_aws_rule_paths_are_inputs_of_the_installed_pulumi_aws(token):
    args, module = _aws_args(token)
    bad = [p for p in _rule_paths(load_rules()[token]) if not _args_has_path(args, module, p)]
    assert not bad, f"{token}: not inputs of pulumi_aws {args.__name__}: {bad}"


@pytest.mark.parametrize("token", sorted(t for t in load_rules() if is_kubernetes_object(t)))
def test_kubernetes_rule_paths_are_fields_of_the_strict_schema(token):
    if not builtin_group(token.split(":")[1]):
        return _custom_resource_paths(token)
    bad = [p for p in _rule_paths(load_rules()[token]) if not _k8s_schema_has_path(token, p)]
    assert not bad, f"{token}: not fields of the Kubernetes 1.33 schema: {bad}"


def _custom_resource_paths(token: str) -> None:
    """A custom resource's paths: metadata.* are ObjectMeta's (any kind's), the rest its pinned CRD's."""
    from crd_schemas import crd_schemas

    api_version, kind = token.split(":")[1], token.rsplit(":", 1)[1]
    schema = crd_schemas().get((api_version, kind))
    assert schema is not None, f"{token}: no pinned CRD serves it"
    bad = []
    for path in _rule_paths(load_rules()[token]):
        if path.startswith("metadata."):
            ok = _k8s_schema_has_path("kubernetes:core/v1:ConfigMap", path)
        else:
            node, ok = schema, True
            for part in path.split("."):
                node = (node.get("items", node) if node.get("type") == "array" else node)
                if part not in (node.get("properties") or {}):
                    ok = False
                    break
                node = node["properties"][part]
        if not ok:
            bad.append(path)
    assert not bad, f"{token}: not fields of its CRD: {bad}"


@pytest.mark.parametrize("token,args", [("kubernetes:helm.sh/v3:Release", "pulumi_kubernetes.helm.v3.ReleaseArgs"),
                                        ("pulumi:providers:kubernetes", "pulumi_kubernetes.ProviderArgs")])
def test_helm_and_provider_rule_paths_are_inputs_of_pulumi_kubernetes(token, args):
    module_name, _, cls_name = args.rpartition(".")
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    bad = [p for p in _rule_paths(load_rules()[token]) if not _args_has_path(cls, module, p)]
    assert not bad, f"{token}: not inputs of {args}: {bad}"


def test_the_path_checks_can_fail():
    args, module = _aws_args("aws:eks/nodeGroup:NodeGroup")
    assert _args_has_path(args, module, "launchTemplate.version")
    assert not _args_has_path(args, module, "launchTemplate.versio")
    assert not _args_has_path(args, module, "instance_types")
    assert _k8s_schema_has_path("kubernetes:apps/v1:Deployment", "spec.selector")
    assert not _k8s_schema_has_path("kubernetes:apps/v1:Deployment", "spec.selectorr")


# ---- matching -----------------------------------------------------------------------------------------

def test_matching_is_by_path_prefix_with_lists_transparent():
    assert covers("instanceTypes", "instanceTypes[0]")
    assert covers("spec.selector", 'spec.selector.matchLabels["app.kubernetes.io/name"]')
    assert covers("launchTemplate.id", "launchTemplate")  # the whole block added or removed
    assert not covers("launchTemplate.id", "launchTemplate.version")
    assert not covers("spec.selector", "spec.selectorX")


def test_optional_computed_fields_replace_when_set_not_when_removed():
    rule = rule_for("aws:eks/nodeGroup:NodeGroup")
    assert rule.replacing_paths(["amiType"], {"amiType": "A"}, {"amiType": "B"}) == ["amiType"]
    assert rule.replacing_paths(["amiType"], {"amiType": "A"}, {}) == []
    assert rule.replacing_paths(["scalingConfig.desiredSize"], {}, {}) == []


def test_conditional_rules_follow_the_provider_source():
    cluster = rule_for("aws:eks/cluster:Cluster")
    enc = {"encryptionConfig": {"resources": ["secrets"]}}
    assert cluster.replacing_paths(["encryptionConfig"], enc, {}) == ["encryptionConfig"]
    assert cluster.replacing_paths(["encryptionConfig"], {}, enc) == []
    provider = rule_for("pulumi:providers:kubernetes")
    same_id = {"clusterIdentifier": "c", "kubeconfig": "a"}
    assert provider.replacing_paths(["kubeconfig"], same_id, {**same_id, "kubeconfig": "b"}) == []
    assert provider.replacing_paths(["kubeconfig"], {"kubeconfig": "a"}, {"kubeconfig": "b"}) == ["kubeconfig"]
    assert provider.replacing_paths(["clusterIdentifier"], {"clusterIdentifier": "a"},
                                    {"clusterIdentifier": "b"}) == ["clusterIdentifier"]


def test_identity_of_kubernetes_objects_and_named_cloud_objects():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "llm", "namespace": "llm-serving"}}
    assert identity("kubernetes:core/v1:Service", svc) == ("k8s", "", "Service", "llm-serving", "llm")
    assert identity("aws:eks/addon:Addon", {"clusterName": "c", "addonName": "vpc-cni"}) == \
        ("aws:eks/addon:Addon", "c", "vpc-cni")
    assert identity("aws:iam/role:Role", {}) is None  # auto-named
    assert identity("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}) is None  # AWS-assigned id


def test_components_never_replace():
    assert rule_for("servingstack:index:SomethingNew").replace_on == ()
    with pytest.raises(MissingRuleError):
        rule_for("servingstack:other:Thing")


def test_rules_file_is_valid_yaml_with_one_entry_per_type():
    text = (PACKAGE / "tools" / "replacement_rules.yaml").read_text()
    keys = re.findall(r'^  "([^"]+)":', text, re.M)
    assert len(keys) == len(set(keys)) == len(load_rules())
    assert Path(PACKAGE / "tools" / "replacement_rules.yaml").exists()
