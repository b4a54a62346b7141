"""Obviously fake answers for what the cloud would compute, used only by offline synth and tests.

Every value says it is a placeholder (account 123456789012, "synth-placeholder"), so a synthesized
plan can never be mistaken for a real one.
"""

from __future__ import annotations

import base64
from typing import Any

ACCOUNT = "123456789012"
PLACEHOLDER = "synth-placeholder"


def _arn(typ: str, name: str, region: str) -> str:
    service = typ.split(":")[1].split("/")[0]
    kind = typ.rsplit(":", 1)[-1].lower()
    scope = "" if service in ("iam", "s3") else region
    account = "" if service == "s3" else ACCOUNT
    resource = name if service == "s3" else f"{kind}/{name}"
    return f"arn:aws:{service}:{scope}:{account}:{resource}"


def fake_outputs(typ: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """Computed outputs a real provider would return (inputs are echoed on top of these)."""
    if not typ.startswith("aws:"):
        return {}
    out: dict[str, Any] = {"arn": _arn(typ, name, region), "name": name}
    if typ == "aws:eks/cluster:Cluster":
        out.update({
            "endpoint": f"https://{PLACEHOLDER}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {"data": base64.b64encode(b"synth placeholder CA").decode()},
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/SYNTHPLACEHOLDER"}]}],
        })
    elif typ == "aws:s3/bucket:Bucket":
        out["bucket"] = inputs.get("bucket") or f"{name}-{PLACEHOLDER}"
        out["arn"] = f"arn:aws:s3:::{out['bucket']}"
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out["latestVersion"] = 1
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        out["nodeGroupName"] = inputs.get("nodeGroupName") or name
        # EKS names the group's Auto Scaling group eks-<node group>-<uuid>.
        out["resources"] = [{"autoscalingGroups": [{"name": f"eks-{out['nodeGroupName']}-{PLACEHOLDER}"}],
                             "remoteAccessSecurityGroupId": ""}]
    elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        out["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{str(inputs.get('url', '')).removeprefix('https://')}"
    elif typ == "aws:kms/key:Key":
        out["keyId"] = f"{PLACEHOLDER}-{name}"
    return out


def fake_invoke(token: str, args: dict[str, Any], region: str) -> dict[str, Any]:
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{region}{z}" for z in "abcdef"]
        return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": region}
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{PLACEHOLDER}/session",
                "userId": f"AROA{PLACEHOLDER.upper()}", "id": ACCOUNT}
    if token == "aws:iam/getSessionContext:getSessionContext":
        return {"arn": args.get("arn"), "issuerArn": f"arn:aws:iam::{ACCOUNT}:role/{PLACEHOLDER}",
                "issuerId": "AROA", "issuerName": PLACEHOLDER, "sessionName": "session", "id": PLACEHOLDER}
    if token == "aws:index/getRegion:getRegion":
        return {"name": region, "region": region, "id": region}
    if token == "aws:eks/getCluster:getCluster":
        name = args.get("name", PLACEHOLDER)
        return {
            "name": name, "id": name, "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}", "version": "1.33",
            "endpoint": f"https://{PLACEHOLDER}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthorities": [{"data": base64.b64encode(b"synth placeholder CA").decode()}],
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/SYNTHPLACEHOLDER"}]}],
            "vpcConfig": {"subnetIds": [f"subnet-{PLACEHOLDER}-{i}" for i in range(3)],
                          "vpcId": f"vpc-{PLACEHOLDER}", "clusterSecurityGroupId": f"sg-{PLACEHOLDER}",
                          "endpointPrivateAccess": True, "endpointPublicAccess": False,
                          "publicAccessCidrs": [], "securityGroupIds": []},
        }
    if token == "aws:s3/getBucket:getBucket":
        bucket = args.get("bucket", PLACEHOLDER)
        return {"bucket": bucket, "id": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}
    if token == "aws:ec2/getSubnets:getSubnets":
        ids: list[str] = []
        for f in args.get("filters") or []:
            if f.get("name") == "subnet-id":
                ids = list(f.get("values") or [])
        return {"ids": ids[:1], "id": PLACEHOLDER}
    return {}
