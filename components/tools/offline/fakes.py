"""What the cloud would compute or answer, for offline synth and tests.

Resource outputs the provider would compute (ARNs, endpoints) are obviously fake placeholders
(account 123456789012, "synth-placeholder"), so a synthesized plan can never be mistaken for a real
one. Invokes that ask AWS a question (zones, offerings, quotas, AMI releases, add-on versions,
adopted clusters) are answered from a recording of real AWS answers (awsdata.py), never invented.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from .awsdata import AwsAnswers

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


def fake_invoke(token: str, args: dict[str, Any], region: str,
                answers: Optional["AwsAnswers"] = None) -> Union[dict[str, Any], tuple[dict, list]]:
    """What AWS would answer to an invoke, from the recording (`answers`). A token nothing here
    answers fails the invoke, as a real provider would fail an unknown function."""
    from ...planning.eks import DEFAULT_VERSION

    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{PLACEHOLDER}/session",
                "userId": f"AROA{PLACEHOLDER.upper()}", "id": ACCOUNT}
    if token == "aws:iam/getSessionContext:getSessionContext":
        return {"arn": args.get("arn"), "issuerArn": f"arn:aws:iam::{ACCOUNT}:role/{PLACEHOLDER}",
                "issuerId": "AROA", "issuerName": PLACEHOLDER, "sessionName": "session", "id": PLACEHOLDER}
    if token == "aws:index/getRegion:getRegion":
        return {"name": region, "region": region, "id": region}
    if token == "aws:s3/getBucket:getBucket":
        bucket = args.get("bucket", PLACEHOLDER)
        return {"bucket": bucket, "id": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}
    if answers is not None:
        handlers = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": answers.zones,
            "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": answers.offerings,
            "aws:servicequotas/getServiceQuota:getServiceQuota": answers.service_quota,
            "aws:ssm/getParameter:getParameter": answers.ssm_parameter,
            "aws:eks/getAddonVersion:getAddonVersion": answers.addon_version,
            "aws:eks/getCluster:getCluster": lambda a: answers.cluster(a, DEFAULT_VERSION),
            "aws:ec2/getSubnet:getSubnet": answers.subnet,
            "aws:ec2/getSubnets:getSubnets": answers.subnets,
            "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": answers.oidc_provider,
        }
        if token in handlers:
            return handlers[token](args)
    return {}, [("", f"the offline runtime records no answer for {token}: add it to "
                     "servingstack.tools.offline (fakes.py / awsdata.py) with a real recording")]

