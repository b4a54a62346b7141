"""ModelStore: the S3 bucket for model weights and Triton repositories, and read-only pod access."""

import json
from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component
from ..config.errors import RuleError
from .iam_spec import model_read_policy, tls_only_bucket_policy
from .workload_role import bind_workload_role, check_irsa_args, workload_role


class ModelStoreArgs(TypedDict):
    create: NotRequired[bool]
    """True: create the bucket and its KMS key. False: adopt `bucket_name`. Default true."""
    bucket_name: NotRequired[str]
    """Bucket name; required when adopting. Default: auto-named when creating."""
    kms_key_arn: NotRequired[str]
    """Adopt only: ARN of the KMS key the adopted bucket encrypts with (for kms:Decrypt). Default "" (none)."""
    noncurrent_version_days: NotRequired[int]
    """Days before noncurrent object versions expire. Default 30."""
    force_destroy: NotRequired[bool]
    """Allow deleting a non-empty bucket (dev only). Default false."""
    protect: NotRequired[bool]
    """Protect and retain-on-delete the bucket and key (prod). Default false."""
    tags: NotRequired[dict[str, str]]
    """Tags for bucket and key. Default {}."""


class ModelStore(Component):
    """SSE-KMS (bucket key) encrypted, versioned, fully public-access-blocked, owner-enforced,
    TLS-only bucket with a noncurrent-version lifecycle rule; or an adopted bucket."""

    bucket_name: pulumi.Output[str]
    """Name of the bucket."""
    bucket_arn: pulumi.Output[str]
    """ARN of the bucket."""
    kms_key_arn: pulumi.Output[str]
    """ARN of the KMS key objects are encrypted with ("" when unknown for an adopted bucket)."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        if not args.get("create", True) and not args.get("bucket_name"):
            raise RuleError("bucket_name", "is required when create is false (the existing bucket to adopt)")

    def __init__(self, name: str, args: ModelStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ModelStore", name, opts, args)
        tags = dict(args.get("tags") or {})
        if not args.get("create", True):
            existing = aws.s3.get_bucket(bucket=args["bucket_name"])
            self.bucket_name = pulumi.Output.from_input(existing.bucket)
            self.bucket_arn = pulumi.Output.from_input(existing.arn)
            self.kms_key_arn = pulumi.Output.from_input(args.get("kms_key_arn", ""))
            self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn,
                                   "kms_key_arn": self.kms_key_arn})
            return
        child = self.child_opts()
        keep = self.child_opts(protect=bool(args.get("protect")),
                                      retain_on_delete=bool(args.get("protect")))
        key = aws.kms.Key(f"{name}-key", description="servingstack model store", enable_key_rotation=True,
                          deletion_window_in_days=30, tags=tags, opts=keep)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.get("bucket_name"),
                               force_destroy=bool(args.get("force_destroy")), tags=tags, opts=keep)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id, opts=child,
                                       rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"))
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse", bucket=bucket.id, opts=child,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn),
                bucket_key_enabled=True)])
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, opts=child,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"))
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            opts=self.child_opts(depends_on=[versioning]),
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.get("noncurrent_version_days", 30)),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7))])
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=bucket.id,
                            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
                            opts=self.child_opts(depends_on=[access_block]))
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn,
                               "kms_key_arn": self.kms_key_arn})


class ModelReadAccessArgs(TypedDict):
    cluster_name: pulumi.Input[str]
    """EKS cluster whose pods get access."""
    namespace: str
    """Namespace of the serving ServiceAccount."""
    service_account: str
    """Name of the serving ServiceAccount."""
    bucket_arn: pulumi.Input[str]
    """ARN of the model bucket."""
    kms_key_arn: pulumi.Input[str]
    """KMS key to allow kms:Decrypt on ("" to omit)."""
    model_prefix: NotRequired[str]
    """Key prefix the pods may read. Default "models/"."""
    use_pod_identity: NotRequired[bool]
    """EKS Pod Identity association (true, default) or IRSA (false)."""
    oidc_provider_arn: NotRequired[pulumi.Input[str]]
    """IAM OIDC provider ARN; required for IRSA (`use_pod_identity` false). Default unset."""
    allow_bucket_listing: NotRequired[bool]
    """Allow s3:ListBucket on the whole bucket (key names only), for clients such as Triton whose
    S3 client calls HeadBucket. Default false: listing only under `model_prefix`."""
    oidc_issuer_url: NotRequired[pulumi.Input[str]]
    """Cluster OIDC issuer URL; required for IRSA (`use_pod_identity` false). Default unset."""
    region: NotRequired[str]
    """Region of the bucket: kms:Decrypt is allowed only through s3.<region>.amazonaws.com. Default:
    the provider's region."""
    tags: NotRequired[dict[str, str]]
    """Tags for the role. Default {}."""


class ModelReadAccess(Component):
    """An IAM role letting one ServiceAccount read the model prefix (and decrypt it), bound by a
    Pod Identity association or an IRSA trust policy. No static keys anywhere."""

    role_arn: pulumi.Output[str]
    """ARN of the read-only role."""
    mode: pulumi.Output[str]
    """"pod-identity" or "irsa"."""
    service_account_annotations: pulumi.Output[dict[str, str]]
    """Annotations the ServiceAccount needs (the IRSA role annotation; empty for Pod Identity)."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        check_irsa_args(args)

    def __init__(self, name: str, args: ModelReadAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ModelReadAccess", name, opts, args)
        child = self.child_opts()
        ns, sa = args["namespace"], args["service_account"]
        pod_identity = args.get("use_pod_identity", True)
        role = workload_role(name, args, ns, sa, child)
        prefix = args.get("model_prefix", "models/")
        region = args.get("region") or aws.get_region().region
        aws.iam.RolePolicy(f"{name}-read", role=role.id, opts=child,
                           policy=pulumi.Output.all(args["bucket_arn"], args["kms_key_arn"]).apply(
                               lambda a: json.dumps(_without_empty_kms(model_read_policy(
                                   a[0], prefix, a[1], args.get("allow_bucket_listing", False), region)))))
        _, self.service_account_annotations = bind_workload_role(name, args, role, ns, sa, child)
        self.role_arn = role.arn
        self.mode = pulumi.Output.from_input("pod-identity" if pod_identity else "irsa")
        self.register_outputs({"role_arn": self.role_arn, "mode": self.mode,
                               "service_account_annotations": self.service_account_annotations})


def _without_empty_kms(policy: dict) -> dict:
    policy["Statement"] = [s for s in policy["Statement"] if s["Resource"] != [""]]
    return policy
