"""Recorded AWS answers for the offline runtime: one YAML file per region (offline/aws/<region>.yaml,
each naming its sources and date) or a file of the same shape given with `--aws-data FILE`.

The invokes the program makes are answered from the recording with the arguments the real APIs
honour (state, zone-type / opt-in filters, excluded zone ids and names, instance-type and location
filters with wildcards), and fail the way AWS fails for what the recording does not hold (a missing
SSM parameter, OIDC provider or subnet). Nothing is answered that the recording cannot answer.

Shape (field names as the EC2/EKS APIs spell them):

    region: us-east-1
    availabilityZones:          # DescribeAvailabilityZones: all zones the account can see
      - {zoneName: us-east-1a, zoneId: use1-az6, zoneType: availability-zone,
         optInStatus: opt-in-not-required, state: available}
    instanceTypeOfferings:      # DescribeInstanceTypeOfferings, LocationType availability-zone
      p4de.24xlarge: [us-east-1a, us-east-1d]
    serviceQuotas: {}           # optional: quota code -> value (L-417A185B ...); absent = unknown
    ssmParameters: {}           # optional: parameter name -> value (AMI release versions)
    eksAddonVersions: {}        # optional: Kubernetes version -> {add-on name: version}
    clusters: {}                # optional: adopted clusters by name: {version, oidcIssuer, subnetIds}
    subnets: {}                 # optional: subnet id -> {availabilityZone, mapPublicIpOnLaunch}
    openIdConnectProviders: []  # optional: issuer URLs that have an IAM OIDC provider

A file given with `--aws-data` lacking `ssmParameters` or `eksAddonVersions` takes them from the
shipped recording of its region (EKS publishes the same answers to every account).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

DATA_DIR = Path(__file__).resolve().parent / "aws"
ZONE_FIELDS = ("zoneName", "zoneId", "zoneType", "optInStatus", "state")
ZONE_TYPES = ("availability-zone", "local-zone", "wavelength-zone")
OPT_IN = ("opt-in-not-required", "opted-in", "not-opted-in")
EKS_SHARED_SECTIONS = ("ssmParameters", "eksAddonVersions")


class AwsDataError(ValueError):
    """A recording that is missing, unreadable or not of the documented shape (one line)."""


def shipped_regions() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AwsDataError(f"{path}: cannot read AWS recording: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise AwsDataError(f"{path}: an AWS recording is a YAML map (see the README, 'Recorded AWS answers')")
    return doc


def validate(doc: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """The recording if it has the documented shape; AwsDataError naming the first problem."""
    def bad(what: str) -> AwsDataError:
        return AwsDataError(f"{origin}: {what} (see the README, 'Recorded AWS answers')")

    if not isinstance(doc.get("region"), str):
        raise bad("`region` is required")
    zones = doc.get("availabilityZones")
    if not isinstance(zones, list) or not zones:
        raise bad("`availabilityZones` must be a non-empty list")
    names = set()
    for i, z in enumerate(zones):
        if not isinstance(z, dict) or any(not isinstance(z.get(f), str) for f in ZONE_FIELDS):
            raise bad(f"availabilityZones[{i}] needs {', '.join(ZONE_FIELDS)}")
        if z["zoneType"] not in ZONE_TYPES or z["optInStatus"] not in OPT_IN:
            raise bad(f"availabilityZones[{i}]: zoneType one of {ZONE_TYPES}, optInStatus one of {OPT_IN}")
        names.add(z["zoneName"])
    offerings = doc.get("instanceTypeOfferings")
    if not isinstance(offerings, dict):
        raise bad("`instanceTypeOfferings` must map instance types to zone names")
    for itype, where in offerings.items():
        if not isinstance(where, list) or any(w not in names for w in where):
            raise bad(f"instanceTypeOfferings.{itype} must list zone names of availabilityZones")
    for section in ("serviceQuotas", "ssmParameters", "eksAddonVersions", "clusters", "subnets"):
        if not isinstance(doc.get(section, {}), dict):
            raise bad(f"`{section}` must be a map")
    if not isinstance(doc.get("openIdConnectProviders", []), list):
        raise bad("`openIdConnectProviders` must be a list of issuer URLs")
    return dict(doc)


def load_recording(region: str, aws_data: Union[None, str, Path, Mapping[str, Any]] = None) -> dict[str, Any]:
    """The recording offline runs answer from: `aws_data` (a file, or a map in tests) or the shipped
    one for `region`. Raises AwsDataError (one line) when none fits."""
    shipped_path = DATA_DIR / f"{region}.yaml"
    shipped = validate(_read(shipped_path), str(shipped_path)) if shipped_path.exists() else None
    if aws_data is None:
        if shipped is None:
            raise AwsDataError(f"no recorded AWS answers for region {region!r} (shipped: "
                               f"{', '.join(shipped_regions())}): pass --aws-data FILE with a recording of "
                               "your account (see the README, 'Recorded AWS answers')")
        return shipped
    if isinstance(aws_data, Mapping):
        doc, origin = dict(aws_data), "aws data"
    else:
        doc, origin = _read(Path(aws_data)), str(aws_data)
    doc = validate(doc, origin)
    if doc["region"] != region:
        raise AwsDataError(f"{origin}: the recording is for {doc['region']}, the stack's aws:region is {region}")
    for section in EKS_SHARED_SECTIONS:
        if section not in doc and shipped is not None:
            doc[section] = shipped.get(section, {})
    return doc


class AwsAnswers:
    """Answers the AWS invokes the program makes, from one recording."""

    def __init__(self, recording: Mapping[str, Any], account: str, placeholder: str):
        self.rec = recording
        self.region = recording["region"]
        self.account = account
        self.placeholder = placeholder

    # ---- EC2 zones and offerings -------------------------------------------------------------

    def zones(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """getAvailabilityZones: DescribeAvailabilityZones semantics (without AllAvailabilityZones
        only zones that need no opt-in or are opted in), then the provider's own state and
        exclusion arguments; names sorted as the provider sorts them."""
        found = [z for z in self.rec["availabilityZones"]
                 if args.get("allAvailabilityZones") or z["optInStatus"] != "not-opted-in"]
        fields = {"zone-name": "zoneName", "zone-id": "zoneId", "zone-type": "zoneType",
                  "opt-in-status": "optInStatus", "state": "state"}
        for f in args.get("filters") or []:
            name, values = f.get("name"), list(f.get("values") or [])
            if name == "region-name":
                found = [z for z in found if any(fnmatch.fnmatchcase(self.region, v) for v in values)]
                continue
            if name not in fields:
                raise ValueError(f"getAvailabilityZones: filter {name!r} is not recorded (use one of "
                                 f"{', '.join(sorted(fields))}, region-name)")
            found = [z for z in found if any(fnmatch.fnmatchcase(z[fields[name]], v) for v in values)]
        if args.get("state"):
            found = [z for z in found if z["state"] == args["state"]]
        found = [z for z in found if z["zoneId"] not in set(args.get("excludeZoneIds") or [])
                 and z["zoneName"] not in set(args.get("excludeNames") or [])]
        found = sorted(found, key=lambda z: z["zoneName"])
        return {"names": [z["zoneName"] for z in found], "zoneIds": [z["zoneId"] for z in found],
                "groupNames": sorted({z.get("groupName", self.region) for z in found}), "id": self.region,
                "region": self.region}

    def offerings(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """getInstanceTypeOfferings with LocationType region (default), availability-zone or
        availability-zone-id and the instance-type / location filters (wildcards allowed)."""
        location_type = args.get("locationType") or "region"
        by_name = {z["zoneName"]: z["zoneId"] for z in self.rec["availabilityZones"]}
        pairs: list[tuple[str, str]] = []
        for itype, zones in sorted(self.rec["instanceTypeOfferings"].items()):
            if location_type == "availability-zone":
                pairs += [(itype, z) for z in zones]
            elif location_type == "availability-zone-id":
                pairs += [(itype, by_name[z]) for z in zones]
            elif location_type == "region":
                pairs += [(itype, self.region)] if zones else []
            else:
                raise ValueError(f"getInstanceTypeOfferings: locationType {location_type!r} is not recorded")
        for f in args.get("filters") or []:
            name, values = f.get("name"), list(f.get("values") or [])
            index = {"instance-type": 0, "location": 1}.get(name)
            if index is None:
                raise ValueError(f"getInstanceTypeOfferings: filter {name!r} is not recorded")
            pairs = [p for p in pairs if any(fnmatch.fnmatchcase(p[index], v) for v in values)]
        return {"instanceTypes": [p[0] for p in pairs], "locations": [p[1] for p in pairs],
                "locationTypes": [location_type] * len(pairs), "id": self.region}

    # ---- quotas, parameters, add-on versions -------------------------------------------------

    def service_quota(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """getServiceQuota: the recorded value, or no value at all (unknown) when not recorded."""
        code = args.get("quotaCode")
        out: dict[str, Any] = {"quotaCode": code, "serviceCode": args.get("serviceCode"), "id": f"{code}",
                               "region": self.region}
        if code in (self.rec.get("serviceQuotas") or {}):
            out["value"] = float(self.rec["serviceQuotas"][code])
        return out

    def ssm_parameter(self, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        name = args.get("name", "")
        params = self.rec.get("ssmParameters") or {}
        if name not in params:
            return {}, [("name", f"ParameterNotFound: {name} is not in the AWS recording for {self.region}")]
        value = str(params[name])
        return {"name": name, "value": value, "insecureValue": value, "type": "String", "version": 1,
                "arn": f"arn:aws:ssm:{self.region}::parameter{name}", "id": name}, []

    def addon_version(self, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        addon, k8s = args.get("addonName"), args.get("kubernetesVersion")
        versions = (self.rec.get("eksAddonVersions") or {}).get(str(k8s)) or {}
        if addon not in versions:
            return {}, [("addonName", f"no {addon} version for Kubernetes {k8s} in the AWS recording for "
                                      f"{self.region}")]
        return {"addonName": addon, "kubernetesVersion": k8s, "version": versions[addon],
                "mostRecent": bool(args.get("mostRecent")), "id": addon}, []

    # ---- adopted clusters --------------------------------------------------------------------

    def standard_zones(self) -> list[str]:
        return sorted(z["zoneName"] for z in self.rec["availabilityZones"]
                      if z["zoneType"] == "availability-zone" and z["optInStatus"] == "opt-in-not-required")

    def placeholder_subnets(self) -> dict[str, dict[str, Any]]:
        """An unrecorded adopted cluster's subnets: one private placeholder per standard zone (up to 3)."""
        return {f"subnet-{self.placeholder}-{i}": {"availabilityZone": zone, "mapPublicIpOnLaunch": False}
                for i, zone in enumerate(self.standard_zones()[:3])}

    def cluster(self, args: Mapping[str, Any], default_version: str) -> dict[str, Any]:
        """getCluster: a recorded cluster, or an obviously fake placeholder one."""
        import base64

        name = args.get("name", self.placeholder)
        rec = (self.rec.get("clusters") or {}).get(name)
        issuer = (rec or {}).get("oidcIssuer") or f"https://oidc.eks.{self.region}.amazonaws.com/id/SYNTHPLACEHOLDER"
        subnets = list((rec or {}).get("subnetIds") or self.placeholder_subnets())
        return {
            "name": name, "id": name, "arn": f"arn:aws:eks:{self.region}:{self.account}:cluster/{name}",
            "version": str((rec or {}).get("version") or default_version),
            "endpoint": f"https://{self.placeholder}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthorities": [{"data": base64.b64encode(b"synth placeholder CA").decode()}],
            "identities": [{"oidcs": [{"issuer": issuer}]}],
            "vpcConfig": {"subnetIds": subnets, "vpcId": f"vpc-{self.placeholder}",
                          "clusterSecurityGroupId": f"sg-{self.placeholder}", "endpointPrivateAccess": True,
                          "endpointPublicAccess": False, "publicAccessCidrs": [], "securityGroupIds": []},
        }

    def _subnets(self) -> dict[str, dict[str, Any]]:
        return {**self.placeholder_subnets(), **(self.rec.get("subnets") or {})}

    def subnet(self, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        sid = args.get("id", "")
        rec = self._subnets().get(sid)
        if rec is None:
            return {}, [("id", f"InvalidSubnetID.NotFound: {sid} is not in the AWS recording for {self.region}")]
        zone_ids = {z["zoneName"]: z["zoneId"] for z in self.rec["availabilityZones"]}
        zone = rec["availabilityZone"]
        return {"id": sid, "availabilityZone": zone, "availabilityZoneId": zone_ids.get(zone, ""),
                "mapPublicIpOnLaunch": bool(rec.get("mapPublicIpOnLaunch", False)),
                "vpcId": rec.get("vpcId", f"vpc-{self.placeholder}"), "state": "available"}, []

    def subnets(self, args: Mapping[str, Any]) -> dict[str, Any]:
        found = self._subnets()
        for f in args.get("filters") or []:
            values = list(f.get("values") or [])
            if f.get("name") == "subnet-id":
                found = {k: v for k, v in found.items() if k in values}
            elif f.get("name") == "availability-zone":
                found = {k: v for k, v in found.items() if v["availabilityZone"] in values}
            else:
                raise ValueError(f"getSubnets: filter {f.get('name')!r} is not recorded")
        return {"ids": sorted(found), "id": self.region}

    def oidc_provider(self, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """getOpenIdConnectProvider by url or arn. Recorded clusters have a provider only if their
        issuer is listed in openIdConnectProviders; the placeholder cluster's always exists."""
        url = str(args.get("url") or "")
        arn = str(args.get("arn") or "")
        host = url.removeprefix("https://") or arn.partition("oidc-provider/")[2]
        known = {u.removeprefix("https://") for u in self.rec.get("openIdConnectProviders") or []}
        known.add(f"oidc.eks.{self.region}.amazonaws.com/id/SYNTHPLACEHOLDER")
        if host not in known:
            return {}, [("url", f"NoSuchEntity: OpenIDConnect provider for {host} not found")]
        return {"arn": f"arn:aws:iam::{self.account}:oidc-provider/{host}", "url": host,
                "clientIdLists": ["sts.amazonaws.com"], "thumbprintLists": [], "id": host}, []


def recording_source(recording: Mapping[str, Any]) -> Optional[str]:
    """Where a recording says it came from (for summaries), if it says."""
    return recording.get("recorded")
