"""Pure IAM and bucket policy documents. No Pulumi imports."""

from __future__ import annotations


def model_read_policy(bucket_arn: str, prefix: str, kms_key_arn: str, list_bucket: bool = False,
                      region: str | None = None) -> dict:
    """Read-only access for serving pods: objects under the model prefix, listing of that prefix
    only, and decryption with the bucket's key (SSE-KMS objects are unreadable without it) — only
    through S3 in `region` (kms:ViaService) and only for this bucket's objects (with S3 Bucket Keys
    the encryption context is the bucket ARN, kms:EncryptionContext:aws:s3:arn; AWS S3 User Guide,
    "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys").

    `list_bucket` allows s3:ListBucket without a prefix condition, for clients that call HeadBucket
    (authorised as s3:ListBucket, with no s3:prefix): Triton's S3 filesystem does. It reveals key
    names only; objects stay readable only under the prefix."""
    prefix = prefix.rstrip("/") + "/"
    listing = ({"Sid": "ListModelBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]}
               if list_bucket else
               {"Sid": "ListModelPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadModelObjects", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [f"{bucket_arn}/{prefix}*"]},
            listing,
            # S3's encryption context is the bucket's ARN for objects written with an S3 Bucket Key
            # (the created bucket turns it on) and the object's ARN otherwise (an adopted bucket without
            # Bucket Keys, or objects written before they were turned on): both, and only under the prefix.
            {"Sid": "DecryptModelObjects", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [kms_key_arn],
             "Condition": {
                 **({"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}} if region else {}),
                 "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/{prefix}*"]}}},
        ],
    }


def tls_only_bucket_policy(bucket_arn: str) -> dict:
    """Deny every request to the bucket that does not use TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def pod_identity_trust_policy() -> dict:
    """Trust for EKS Pod Identity: the agent assumes the role for the associated service account."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                       "Action": ["sts:AssumeRole", "sts:TagSession"]}],
    }


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> dict:
    """Trust for IRSA, scoped to exactly one service account of one namespace."""
    issuer = issuer_url.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    }


def benchmark_write_policy(bucket_arn: str, prefix: str, kms_key_arn: str, region: str) -> dict:
    """The benchmark Job's role: put (and abort multipart uploads of) objects under `prefix` only, and
    the KMS calls SSE-KMS uploads need — GenerateDataKey for every object, Decrypt to complete a
    multipart upload — only through S3 in `region` and only for this bucket's encryption context:
    the object ARN under the prefix, or the bucket ARN when S3 Bucket Keys are on (as the model store's
    are; S3 then uses the bucket ARN as the context). Nothing is readable, listable or deletable."""
    prefix = prefix.rstrip("/") + "/"
    statements = [
        {"Sid": "WriteBenchmarkResults", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload"], "Resource": [f"{bucket_arn}/{prefix}*"]},
    ]
    if kms_key_arn:
        statements.append({
            "Sid": "EncryptBenchmarkResults", "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [kms_key_arn],
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/{prefix}*"]},
            },
        })
    return {"Version": "2012-10-17", "Statement": statements}
