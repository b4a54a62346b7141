"""servingstack: production LLM serving on AWS EKS GPU nodes, as Pulumi components.

Importing the package is cheap; the components (which import the Pulumi providers) load on first use.
The names below are the public API: each component `X` takes `XArgs` (a TypedDict whose fields are
documented in place), and the same components are hosted as the multi-language package
`servingstack` (see components/package.py and provider/).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EksCluster": "components.aws.cluster", "EksClusterArgs": "components.aws.cluster",
    "ClusterNetwork": "components.aws.network", "ClusterNetworkArgs": "components.aws.network",
    "GpuNodePool": "components.aws.nodepool", "GpuNodePoolArgs": "components.aws.nodepool",
    "ModelStore": "components.aws.model_store", "ModelStoreArgs": "components.aws.model_store",
    "ModelReadAccess": "components.aws.model_store", "ModelReadAccessArgs": "components.aws.model_store",
    "NvidiaDevicePlugin": "components.k8s.device_plugin", "NvidiaDevicePluginArgs": "components.k8s.device_plugin",
    "NgcCredentials": "components.k8s.credentials", "NgcCredentialsArgs": "components.k8s.credentials",
    "HuggingFaceToken": "components.k8s.credentials", "HuggingFaceTokenArgs": "components.k8s.credentials",
    "VllmServer": "components.serving.vllm", "VllmServerArgs": "components.serving.vllm",
    "TritonServer": "components.serving.triton", "TritonServerArgs": "components.serving.triton",
    "NimServer": "components.serving.nim", "NimServerArgs": "components.serving.nim",
    "ServingArgs": "components.serving.common",
    "ServingPlatform": "components.platform", "ServingPlatformArgs": "components.platform",
    "MODELS": "components.catalog", "INSTANCE_TYPES": "components.catalog",
    "StackConfig": "components.config", "ConfigError": "components.config",
    "load_stack_config": "components.config", "parse_stack_config": "components.config",
}

__all__ = sorted(_EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
