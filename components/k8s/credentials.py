"""NgcCredentials and HuggingFaceToken: Kubernetes Secrets made only from Pulumi secret config."""

import base64
import json
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired
from ..base import Component, KubernetesArgs

NGC_REGISTRY = "nvcr.io"
NGC_USERNAME = "$oauthtoken"
SECRET_OUTPUTS = ["data", "stringData"]


def ngc_docker_config(api_key: str) -> str:
    """The .dockerconfigjson for nvcr.io: user literally `$oauthtoken`, password the API key."""
    auth = base64.b64encode(f"{NGC_USERNAME}:{api_key}".encode()).decode()
    return json.dumps({"auths": {NGC_REGISTRY: {"username": NGC_USERNAME, "password": api_key, "auth": auth}}})


class NgcCredentialsArgs(KubernetesArgs):
    namespace: pulumi.Input[str]
    """Namespace of the serving pods."""
    api_key: pulumi.Input[str]
    """NGC API key; pass a secret Output (`config.require_secret`)."""
    pull_secret_name: NotRequired[str]
    """Name of the nvcr.io image pull secret. Default "ngc-secret"."""
    api_secret_name: NotRequired[str]
    """Name of the Opaque secret holding NGC_API_KEY. Default "ngc-api"."""


class NgcCredentials(Component):
    """An nvcr.io image pull secret and an NGC_API_KEY secret, both secret in Pulumi state."""

    pull_secret_name: pulumi.Output[str]
    """Name of the kubernetes.io/dockerconfigjson secret for nvcr.io."""
    api_secret_name: pulumi.Output[str]
    """Name of the Opaque secret with key NGC_API_KEY."""

    def __init__(self, name: str, args: NgcCredentialsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:NgcCredentials", name, opts, args)
        key = pulumi.Output.secret(args["api_key"])
        pull_name = args.get("pull_secret_name", "ngc-secret")
        api_name = args.get("api_secret_name", "ngc-api")
        pull = k8s.core.v1.Secret(
            f"{name}-pull", metadata=k8s.meta.v1.ObjectMetaArgs(name=pull_name, namespace=args["namespace"]),
            type="kubernetes.io/dockerconfigjson", string_data={".dockerconfigjson": key.apply(ngc_docker_config)},
            opts=self.child_opts(additional_secret_outputs=SECRET_OUTPUTS))
        api = k8s.core.v1.Secret(
            f"{name}-api", metadata=k8s.meta.v1.ObjectMetaArgs(name=api_name, namespace=args["namespace"]),
            type="Opaque", string_data={"NGC_API_KEY": key}, opts=self.child_opts(additional_secret_outputs=SECRET_OUTPUTS))
        # The names are known up front; deriving them from the secrets' ids orders consumers after creation.
        self.pull_secret_name = pull.id.apply(lambda _: pull_name)
        self.api_secret_name = api.id.apply(lambda _: api_name)
        self.register_outputs({"pull_secret_name": self.pull_secret_name, "api_secret_name": self.api_secret_name})


class HuggingFaceTokenArgs(KubernetesArgs):
    namespace: pulumi.Input[str]
    """Namespace of the serving pods."""
    token: pulumi.Input[str]
    """Hugging Face token; pass a secret Output (`config.require_secret`)."""
    secret_name: NotRequired[str]
    """Name of the Opaque secret with key HF_TOKEN. Default "hf-token"."""


class HuggingFaceToken(Component):
    """An Opaque secret holding HF_TOKEN for gated Hugging Face downloads, secret in Pulumi state."""

    secret_name: pulumi.Output[str]
    """Name of the secret (key HF_TOKEN)."""

    def __init__(self, name: str, args: HuggingFaceTokenArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:HuggingFaceToken", name, opts, args)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.get("secret_name", "hf-token"), namespace=args["namespace"]),
            type="Opaque", string_data={"HF_TOKEN": pulumi.Output.secret(args["token"])}, opts=self.child_opts(additional_secret_outputs=SECRET_OUTPUTS))
        self.secret_name = secret.id.apply(lambda _, n=args.get("secret_name", "hf-token"): n)
        self.register_outputs({"secret_name": self.secret_name})
