"""Issue 11: what the program asks AWS before building — quotas, adopted clusters' OIDC provider and
subnets, documentation placeholders on real runs — and the recordings' fakes honouring the real
APIs' arguments. Real runs are simulated by making `offline_runtime()` answer False (the detection
itself is tested below)."""

from __future__ import annotations

import pytest

from servingstack.config import ConfigError
from conftest import recording, set_key, stack_config, synth, synth_config

NG = "aws:eks/nodeGroup:NodeGroup"


@pytest.fixture
def real_run(monkeypatch):
    """Run the program as `pulumi preview`/`up` would (the fakes still answer the invokes)."""
    import servingstack.aws.preflight as preflight

    monkeypatch.setattr(preflight, "offline_runtime", lambda: False)


def fixed_placeholders(cfg: dict) -> dict:
    cfg["servingstack:cluster"]["publicAccessCidrs"] = ["198.18.7.0/24"]
    if "adminPrincipalArns" in cfg["servingstack:cluster"]:
        cfg["servingstack:cluster"]["adminPrincipalArns"] = ["arn:aws:iam::210987654321:role/platform-admins"]
    return cfg


# ---- offline / real detection ---------------------------------------------------------------

def test_offline_runtime_is_detected_from_the_resource_monitor(monkeypatch):
    import pulumi.runtime.settings as settings

    from servingstack.base import offline_runtime

    seen = {}

    def program():
        seen["offline"] = offline_runtime()
        return {}

    from servingstack.tools.offline.recorder import run_program

    run_program(program, {}, [], "t", "us-east-1")
    assert seen["offline"] is True
    monkeypatch.setattr(settings.SETTINGS, "monitor", object())  # what the engine's gRPC stub is to us
    assert offline_runtime() is False


# ---- placeholders ------------------------------------------------------------------------------

def test_synth_keeps_placeholders_with_a_notice_per_key():
    notices = synth("prod").notices
    assert any("servingstack:cluster.publicAccessCidrs is the documentation value 203.0.113.0/24" in n for n in notices)
    assert any("servingstack:cluster.adminPrincipalArns is the documentation value "
               "arn:aws:iam::123456789012:role/platform-admins" in n for n in notices)


def test_a_real_run_refuses_placeholders_in_one_line_before_anything_is_built(real_run):
    from servingstack.tools.offline import recorder

    cfg = stack_config("prod")
    with pytest.raises(ConfigError) as exc:
        synth_config(cfg, name="prod")
    message = str(exc.value)
    assert message.startswith("servingstack:cluster.publicAccessCidrs: '203.0.113.0/24' is an RFC 5737 documentation")
    assert "checkip.amazonaws.com" in message and "\n" not in message
    cfg["servingstack:cluster"]["publicAccessCidrs"] = ["198.18.7.0/24"]
    with pytest.raises(ConfigError, match=r"^servingstack:cluster.adminPrincipalArns: .*123456789012.*get-caller-identity"):
        synth_config(cfg, name="prod")
    assert synth_config(fixed_placeholders(stack_config("prod")), name="prod").of_type(NG)
    assert recorder  # the refusal comes before any registration: see test_nothing_registered_on_refusal


def test_nothing_registered_on_refusal(real_run, monkeypatch):
    from servingstack.tools.offline import recorder

    registered = []
    original = recorder.Recorder.new_resource
    monkeypatch.setattr(recorder.Recorder, "new_resource",
                        lambda self, args: registered.append(args.name) or original(self, args))
    with pytest.raises(ConfigError):
        synth_config(stack_config("staging"), name="staging")
    assert registered == []


# ---- quotas ------------------------------------------------------------------------------------

def test_quota_needs_are_reported_offline_without_refusing():
    result = synth("prod")
    assert result.outputs["quotaNeeds"] == {"L-417A185B": {
        "name": "Running On-Demand P instances", "vcpus": 3 * 96, "quota": None, "pools": ["gpuNodePool"]}}
    cfg = stack_config("prod")
    cfg["servingstack:extraGpuNodePools"] = [{"name": "l4", "instanceType": "g6.12xlarge", "capacityType": "SPOT",
                                              "minSize": 0, "maxSize": 2, "desiredSize": 0}]
    needs = synth_config(cfg).outputs["quotaNeeds"]
    assert needs["L-3819A6DF"]["vcpus"] == 2 * 48 and needs["L-3819A6DF"]["name"] == "All G and VT Spot Instance Requests"


@pytest.mark.parametrize("mode", ["offline", "real"])
def test_a_known_quota_below_the_need_is_refused_in_one_line(mode, request):
    if mode == "real":
        request.getfixturevalue("real_run")
    rec = recording("us-east-1")
    rec["serviceQuotas"] = {"L-417A185B": 192}
    cfg = fixed_placeholders(stack_config("prod"))
    with pytest.raises(ConfigError) as exc:
        synth_config(cfg, name="prod", aws_data=rec)
    message = str(exc.value)
    assert message.startswith("servingstack:gpuNodePool.maxSize: ")
    assert "288 vCPUs" in message and "quota is 192" in message and "L-417A185B" in message and "\n" not in message
    rec["serviceQuotas"] = {"L-417A185B": 384}
    result = synth_config(cfg, name="prod", aws_data=rec)
    assert result.outputs["quotaNeeds"]["L-417A185B"]["quota"] == 384


def test_capacity_block_pools_draw_on_no_on_demand_quota():
    cfg = stack_config("prod")
    set_key(cfg, "servingstack:gpuNodePool.instanceType", "p5.48xlarge")
    set_key(cfg, "servingstack:gpuNodePool.capacityType", "CAPACITY_BLOCK")
    set_key(cfg, "servingstack:gpuNodePool.capacityReservationId", "cr-0123456789abcdef0")
    set_key(cfg, "servingstack:gpuNodePool.availabilityZone", "us-east-1b")
    assert synth_config(cfg).outputs["quotaNeeds"] == {}


# ---- adopted clusters ------------------------------------------------------------------------

def adopted(subnets: dict, providers: list, pod_identity: bool = False):
    rec = recording("us-west-2")
    issuer = "https://oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF"
    rec["clusters"] = {"platform-dev": {"version": "1.35", "oidcIssuer": issuer, "subnetIds": sorted(subnets)}}
    rec["subnets"] = subnets
    rec["openIdConnectProviders"] = providers
    cfg = stack_config("dev-small")
    cfg["servingstack:cluster"]["podIdentity"] = pod_identity
    return cfg, rec, issuer


PRIVATE = {"subnet-0a": {"availabilityZone": "us-west-2a", "mapPublicIpOnLaunch": False},
           "subnet-0d": {"availabilityZone": "us-west-2d", "mapPublicIpOnLaunch": False}}


def test_irsa_on_an_adopted_cluster_needs_its_oidc_provider():
    cfg, rec, issuer = adopted(PRIVATE, providers=[])
    with pytest.raises(ConfigError) as exc:
        synth_config(cfg, aws_data=rec)
    message = str(exc.value)
    assert message.startswith("servingstack:cluster.name: 'platform-dev' has no IAM OIDC provider for its issuer")
    assert issuer in message and "associate-iam-oidc-provider" in message and "\n" not in message
    cfg, rec, issuer = adopted(PRIVATE, providers=[issuer])
    assert synth_config(cfg, aws_data=rec).outputs["modelStoreAccess"] == "irsa"
    cfg, rec, _ = adopted(PRIVATE, providers=[], pod_identity=True)  # Pod Identity needs no provider
    assert synth_config(cfg, aws_data=rec).outputs["modelStoreAccess"] == "pod-identity"


def test_public_node_subnets_are_refused_unless_allowed():
    public = {**PRIVATE, "subnet-0b": {"availabilityZone": "us-west-2b", "mapPublicIpOnLaunch": True}}
    cfg, rec, _ = adopted(public, providers=[], pod_identity=True)
    with pytest.raises(ConfigError, match=r"^servingstack:cluster.name: subnet subnet-0b \(us-west-2b\) auto-assigns "
                                          r"public IPv4 addresses"):
        synth_config(cfg, aws_data=rec)
    cfg["servingstack:cluster"]["allowPublicNodeSubnets"] = True
    assert synth_config(cfg, aws_data=rec).of_type(NG)


def test_adopted_pools_get_only_subnets_in_zones_offering_their_type():
    cfg, rec, _ = adopted(PRIVATE, providers=[], pod_identity=True)
    set_key(cfg, "servingstack:gpuNodePool.instanceType", "g5.xlarge")  # not offered in us-west-2d
    set_key(cfg, "servingstack:serving.cpuPerGpu", 3)
    group = synth_config(cfg, aws_data=rec).one(NG).inputs
    assert group["subnetIds"] == ["subnet-0a"]
    only_d = {"subnet-0d": PRIVATE["subnet-0d"]}
    cfg2, rec2, _ = adopted(only_d, providers=[], pod_identity=True)
    set_key(cfg2, "servingstack:gpuNodePool.instanceType", "g5.xlarge")
    set_key(cfg2, "servingstack:serving.cpuPerGpu", 3)
    with pytest.raises(ConfigError, match=r"^servingstack:cluster.name: none of the node subnets .* offering g5.xlarge"):
        synth_config(cfg2, aws_data=rec2)


# ---- the fakes honour the real APIs' arguments ----------------------------------------------

def answers(region="us-east-1", rec=None):
    from servingstack.tools.offline.awsdata import AwsAnswers, load_recording

    return AwsAnswers(load_recording(region, rec), "123456789012", "synth-placeholder")


def test_zone_answers_follow_describe_availability_zones():
    a = answers()
    everything = a.zones({"allAvailabilityZones": True})
    assert everything["names"][0] == "us-east-1-atl-2a"  # sorted by name, as the provider sorts
    assert dict(zip(everything["names"], everything["zoneIds"]))["us-east-1a"] == "use1-az6"
    regional = a.zones({"filters": [{"name": "zone-type", "values": ["availability-zone"]},
                                    {"name": "opt-in-status", "values": ["opt-in-not-required"]}],
                        "excludeZoneIds": ["use1-az3"], "state": "available"})
    assert regional["names"] == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]
    rec = recording()
    rec["availabilityZones"][0]["optInStatus"] = "not-opted-in"
    assert "us-east-1-atl-2a" not in answers(rec=rec).zones({})["names"]  # DescribeAvailabilityZones default
    assert "us-east-1-atl-2a" in answers(rec=rec).zones({"allAvailabilityZones": True})["names"]
    with pytest.raises(ValueError, match="not recorded"):
        a.zones({"filters": [{"name": "parent-zone-name", "values": ["x"]}]})


def test_offering_answers_follow_describe_instance_type_offerings():
    a = answers()
    r = a.offerings({"locationType": "availability-zone",
                     "filters": [{"name": "instance-type", "values": ["p4*"]},
                                 {"name": "location", "values": ["us-east-1d"]}]})
    assert sorted(zip(r["instanceTypes"], r["locations"])) == [("p4d.24xlarge", "us-east-1d"),
                                                               ("p4de.24xlarge", "us-east-1d")]
    by_id = a.offerings({"locationType": "availability-zone-id",
                         "filters": [{"name": "instance-type", "values": ["p4de.24xlarge"]}]})
    assert sorted(by_id["locations"]) == ["use1-az4", "use1-az6"]
    assert answers("us-east-2").offerings({"filters": [{"name": "instance-type", "values": ["p4de.24xlarge"]}]}) \
        ["instanceTypes"] == []


def test_unrecorded_answers_fail_as_aws_would_and_unknown_invokes_fail():
    from servingstack.tools.offline.fakes import fake_invoke

    a = answers()
    assert "value" not in a.service_quota({"serviceCode": "ec2", "quotaCode": "L-417A185B"})
    assert a.ssm_parameter({"name": "/aws/service/eks/optimized-ami/1.29/x"})[1][0][1].startswith("ParameterNotFound")
    assert a.subnet({"id": "subnet-nope"})[1][0][1].startswith("InvalidSubnetID.NotFound")
    out = fake_invoke("aws:ec2/getVpc:getVpc", {}, "us-east-1", a)
    assert out[0] == {} and "records no answer" in out[1][0][1]


@pytest.mark.parametrize("region", ["us-east-1", "us-east-2", "us-west-2"])
def test_shipped_recordings_name_their_sources_and_cover_the_catalog(region):
    from servingstack.planning.catalog import INSTANCE_TYPES
    from servingstack.planning.eks import DEFAULT_VERSION, release_version_parameter
    from servingstack.tools.offline.awsdata import DATA_DIR, validate

    rec = recording(region)
    validate(rec, region)
    assert rec["region"] == region and (DATA_DIR / f"{region}.yaml").exists()
    assert rec["recorded"] == "2026-12-01"
    for section in ("availabilityZones", "instanceTypeOfferings", "ssmParameters", "eksAddonVersions",
                    "serviceQuotas"):
        assert rec["sources"].get(section), f"{region}: no source for {section}"
    assert set(INSTANCE_TYPES) <= set(rec["instanceTypeOfferings"])  # offered or explicitly []
    for ami in ("AL2023_x86_64_NVIDIA", "AL2023_x86_64_STANDARD", "BOTTLEROCKET_x86_64_NVIDIA"):
        assert release_version_parameter(ami, DEFAULT_VERSION) in rec["ssmParameters"]
    assert set(rec["eksAddonVersions"][DEFAULT_VERSION]) == {"vpc-cni", "kube-proxy", "coredns",
                                                              "eks-pod-identity-agent"}


def test_a_region_without_a_recording_is_one_line(tmp_path):
    import subprocess
    import sys

    from conftest import write_stack_file

    cfg = fixed_placeholders(stack_config("prod"))
    cfg["aws:region"] = "eu-west-1"
    path = write_stack_file(tmp_path, cfg, name="prod")
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "synth", "--config", str(path),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "no recorded AWS answers for region 'eu-west-1'" in line and "--aws-data" in line



# ---- a test's own mocks ------------------------------------------------------------------------

def test_questions_a_tests_own_mocks_leave_unanswered_refuse_and_pin_nothing():
    """Pulumi's standard mocks echo an invoke's arguments: zones, offerings, AMI releases and add-on
    versions are then unknown; the platform still builds (first zone names, nothing pinned)."""
    import pulumi
    from pulumi.runtime import settings

    from servingstack.program import build
    from servingstack.tools.synth import engine_config

    registered: list = []

    class Echo(pulumi.runtime.Mocks):
        def new_resource(self, args):
            registered.append(args)
            return [args.name + "_id", args.inputs]

        def call(self, args):
            return args.args

    config, _, _ = engine_config(stack_config("prod"))
    config.update({"servingstack:hfToken": "hf_x"})
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(Echo(), project="servingstack", stack="unit", preview=False)
    pulumi.runtime.set_all_config(config, ["servingstack:hfToken"])
    seen: dict = {}

    @pulumi.runtime.test
    def body():
        out = build()
        return pulumi.Output.all(zones=out["availabilityZones"]).apply(seen.update)

    body()
    assert seen["zones"] == {"us-east-1a": "unknown", "us-east-1b": "unknown"}  # the 2 pinned ids' count
    groups = [a.inputs for a in registered if a.typ == "aws:eks/nodeGroup:NodeGroup"]
    assert groups and all("releaseVersion" not in g for g in groups)
    addons = [a.inputs for a in registered if a.typ == "aws:eks/addon:Addon"]
    assert addons and all("addonVersion" not in a for a in addons)
