"""Issue 11: GPU pools only in zones that offer their type, never in Local Zones, and a zone choice
that does not move under a live cluster. Asserted on recorded inputs synthesized against recordings
of real AWS answers (components/tools/offline/aws/) and mutations of them."""

from __future__ import annotations

import copy
import functools
import ipaddress
import subprocess
import sys

import pytest
import yaml

from conftest import recording, stack_config, synth, synth_config, write_stack_file

NG = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"


def unpinned(name: str = "prod", count=None) -> dict:
    """A shipped stack without its pinned zone ids (and with `count` zones asked for, if given)."""
    cfg = stack_config(name)
    cfg["servingstack:cluster"].pop("availabilityZoneIds", None)
    if count is not None:
        cfg["servingstack:cluster"]["availabilityZoneCount"] = count
    return cfg


def zones_of(result, names) -> dict[str, str]:
    by_id = {f"{r.name}-id": r.inputs["availabilityZone"] for r in result.of_type(SUBNET)}
    return [by_id[s] for s in names]


def offering_zones(rec: dict, itype: str) -> set[str]:
    return set(rec["instanceTypeOfferings"][itype])


def local_zones(rec: dict) -> set[str]:
    return {z["zoneName"] for z in rec["availabilityZones"] if z["zoneType"] != "availability-zone"}


def test_the_shipped_recording_is_the_hard_case():
    """p4de.24xlarge is offered in 2 of us-east-1's 6 zones, and an opted-in Local Zone sorts first."""
    rec = recording("us-east-1")
    azs = [z for z in rec["availabilityZones"] if z["zoneType"] == "availability-zone"]
    assert len(azs) == 6 and len(offering_zones(rec, "p4de.24xlarge")) == 2
    names = sorted(z["zoneName"] for z in rec["availabilityZones"])
    assert names[0] in local_zones(rec) and names[0] < "us-east-1a"


@pytest.mark.parametrize("local_zone_offers_p4de", [False, True])
def test_gpu_subnets_only_in_offering_zones_never_in_a_local_zone(local_zone_offers_p4de):
    rec = recording("us-east-1")
    if local_zone_offers_p4de:  # even a Local Zone that offers the type is never used
        rec["instanceTypeOfferings"]["p4de.24xlarge"].append("us-east-1-atl-2a")
    result = synth_config(unpinned("prod", count=2), aws_data=rec)
    subnets = result.of_type(SUBNET)
    assert not {r.inputs["availabilityZone"] for r in subnets} & local_zones(rec)
    offering = offering_zones(recording("us-east-1"), "p4de.24xlarge")
    for group in result.of_type(NG):
        zones = zones_of(result, group.inputs["subnetIds"])
        assert zones and set(zones) <= offering, (group.name, zones)
    cidrs = [ipaddress.ip_network(r.inputs["cidrBlock"]) for r in subnets]
    assert len(set(cidrs)) == len(cidrs)
    assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])
    # The EKS-refused zone (use1-az3 = us-east-1e here) offers p5 but is never a candidate either.
    assert "us-east-1e" not in {r.inputs["availabilityZone"] for r in subnets}


def test_default_zone_count_narrows_to_the_offering_zones_with_a_notice(capfd):
    result = synth_config(unpinned("prod"))  # availabilityZoneCount left at its default of 3
    err = capfd.readouterr().err
    assert "availabilityZoneCount is left at 3, but only 2 zones of us-east-1 offer" in err
    assert "availabilityZoneIds: [use1-az6, use1-az4]" in err  # says what to pin
    cluster = result.one("aws:eks/cluster:Cluster").inputs
    assert sorted(zones_of(result, cluster["vpcConfig"]["subnetIds"])) == ["us-east-1a", "us-east-1d"]


def test_asking_for_more_zones_than_offer_the_type_is_refused_in_one_line(tmp_path):
    path = write_stack_file(tmp_path, unpinned("prod", count=3), name="prod")
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "synth", "--config", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: servingstack:cluster.availabilityZoneCount: 3 zones wanted")
    assert "p4de.24xlarge (gpuNodePool) in us-east-1a (use1-az6), us-east-1d (use1-az4)" in line
    assert not (tmp_path / "out").exists()


def test_a_type_offered_nowhere_in_the_region_is_refused_naming_the_pool():
    from servingstack.config import ConfigError

    cfg = unpinned("prod")
    cfg["aws:region"] = "us-east-2"  # no zone of us-east-2 offers p4de.24xlarge (recording)
    with pytest.raises(ConfigError, match=r"^servingstack:gpuNodePool.instanceType: .*p4de.24xlarge.*in none"):
        synth_config(cfg)


def test_each_pool_gets_only_its_offering_zones():
    """With zones pinned, a pool whose type some pinned zones do not offer gets subnets only in those
    that do; the system pool (m6i.large) too."""
    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["availabilityZoneIds"] = ["use1-az6", "use1-az4", "use1-az5"]  # a, d, f
    result = synth_config(cfg)
    assert sorted(zones_of(result, result.one(NG, "pool-gpu-ng").inputs["subnetIds"])) == ["us-east-1a", "us-east-1d"]
    assert sorted(zones_of(result, result.one(NG, "cluster-system").inputs["subnetIds"])) == [
        "us-east-1a", "us-east-1d", "us-east-1f"]


@pytest.mark.parametrize("zone_id,fragment", [("use1-az3", "EKS refuses cluster subnets there"),
                                              ("use1-atl2-az1", "not an Availability Zone id"),
                                              ("use1-az9", "is not a zone of us-east-1")])
def test_pinned_zone_ids_are_checked(zone_id, fragment):
    from servingstack.config import ConfigError

    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["availabilityZoneIds"] = ["use1-az6", zone_id]
    with pytest.raises(ConfigError, match=r"servingstack:cluster.availabilityZoneIds") as exc:
        synth_config(cfg)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


# ---- the zone choice never moves under a live cluster ---------------------------------------

def network_and_cluster(result) -> dict:
    """Every input a zone shift would change: subnets, NAT gateways, route tables, the cluster."""
    kinds = (SUBNET, "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/routeTable:RouteTable",
             "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/vpcEndpoint:VpcEndpoint",
             "aws:eks/cluster:Cluster", NG)
    return {(r.type, r.name): r.inputs for r in result.resources if r.type in kinds}


def mutations() -> dict[str, callable]:
    def add_zone(rec):  # a zone AWS adds later, offering everything
        rec["availabilityZones"].append({"zoneName": "us-east-1g", "zoneId": "use1-az7", "zoneType": "availability-zone",
                                         "optInStatus": "opt-in-not-required", "state": "available"})
        for zones in rec["instanceTypeOfferings"].values():
            zones.append("us-east-1g")

    def add_local_zone_first(rec):  # another opted-in Local Zone, sorting before every zone, offering p4de
        rec["availabilityZones"].insert(0, {"zoneName": "us-east-1-bos-1a", "zoneId": "use1-bos1-az1",
                                            "zoneType": "local-zone", "optInStatus": "opted-in", "state": "available"})
        rec["instanceTypeOfferings"]["p4de.24xlarge"].insert(0, "us-east-1-bos-1a")
        rec["instanceTypeOfferings"]["m6i.large"].insert(0, "us-east-1-bos-1a")

    def reverse_listing(rec):
        rec["availabilityZones"].reverse()
        for zones in rec["instanceTypeOfferings"].values():
            zones.reverse()

    def remove_unused_zone(rec):
        rec["availabilityZones"] = [z for z in rec["availabilityZones"] if z["zoneName"] != "us-east-1f"]
        for itype, zones in rec["instanceTypeOfferings"].items():
            rec["instanceTypeOfferings"][itype] = [z for z in zones if z != "us-east-1f"]

    def constrain_unused_zone(rec):
        for z in rec["availabilityZones"]:
            if z["zoneName"] == "us-east-1b":
                z["state"] = "constrained"

    return {"add-zone": add_zone, "local-zone-first": add_local_zone_first, "reversed-listing": reverse_listing,
            "removed-zone": remove_unused_zone, "constrained-zone": constrain_unused_zone}


@functools.lru_cache(maxsize=None)
def unmutated(pinned: bool) -> tuple:
    cfg = stack_config("prod") if pinned else unpinned("prod", count=2)
    return cfg, network_and_cluster(synth_config(cfg, name="prod"))


@pytest.mark.parametrize("mutation", sorted(mutations()))
@pytest.mark.parametrize("pinned", [True, False], ids=["pinned-ids", "derived-count-2"])
def test_zone_changes_at_aws_move_no_subnet_nat_or_cluster_input(mutation, pinned):
    cfg, before = unmutated(pinned)
    rec = recording("us-east-1")
    mutations()[mutation](rec)
    after = network_and_cluster(synth_config(cfg, name="prod", aws_data=rec))
    assert after == before


def test_pinned_zones_stay_when_aws_changes_offerings_or_constrains_a_chosen_zone(capfd):
    """What only pinning survives: new offerings in a zone sorting first, and a chosen zone
    constrained. Unpinned, the derivation follows the offerings (hence the notice to pin)."""
    rec = recording("us-east-1")
    rec["instanceTypeOfferings"]["p4de.24xlarge"].append("us-east-1b")  # AWS adds p4de to use1-az1
    for z in rec["availabilityZones"]:
        if z["zoneId"] == "use1-az4":
            z["state"] = "constrained"
    before = network_and_cluster(synth("prod"))
    assert network_and_cluster(synth_config(stack_config("prod"), name="prod", aws_data=rec)) == before
    assert "pinned zone us-east-1d (use1-az4) is not in state available" in capfd.readouterr().err
    moved = synth_config(unpinned("prod", count=2), name="prod", aws_data=rec)
    assert network_and_cluster(moved) != before


def test_aws_data_file_on_the_command_line(tmp_path):
    """`servingstack synth --aws-data FILE` answers from FILE: a recording where p4de is offered in
    us-east-1b and us-east-1c only moves an unpinned stack there."""
    rec = recording("us-east-1")
    rec["instanceTypeOfferings"]["p4de.24xlarge"] = ["us-east-1b", "us-east-1c"]
    data = tmp_path / "account.yaml"
    data.write_text(yaml.safe_dump(rec))
    path = write_stack_file(tmp_path, unpinned("prod", count=2), name="prod")
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "synth", "--config", str(path),
                           "--aws-data", str(data), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "zones us-east-1b (use1-az1), us-east-1c (use1-az2)" in proc.stdout
    plan = (tmp_path / "out" / "plan.json").read_text()
    assert "cluster-net-private-us-east-1b" in plan and "cluster-net-private-us-east-1a" not in plan

    other = copy.deepcopy(rec)
    other["region"] = "us-west-2"
    data.write_text(yaml.safe_dump(other))
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "check", "--config", str(path),
                           "--aws-data", str(data), "--out", str(tmp_path / "out2")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {data}: the recording is for us-west-2, the stack's aws:region is us-east-1"]


def test_an_unknown_zone_id_suggests_only_zones_that_would_be_accepted():
    """The suggestion lists the zones that hold an EKS cluster and offer every pool's type (for prod's
    p4de in the us-east-1 recording: az4 and az6), never a Local Zone or use1-az3, which are refused next."""
    from servingstack.config import ConfigError

    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["availabilityZoneIds"] = ["use1-az6", "use1-az99"]
    with pytest.raises(ConfigError) as exc:
        synth_config(cfg)
    suggested = str(exc.value).rsplit(": ", 1)[1].split(", ")
    assert suggested == ["use1-az4", "use1-az6"], str(exc.value)
    cfg["servingstack:cluster"]["availabilityZoneIds"] = suggested
    assert synth_config(cfg).resources  # the suggestion is accepted
