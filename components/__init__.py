"""servingstack: production LLM serving on AWS EKS GPU nodes, as Pulumi components.

Importing the package is cheap; the components (which import the Pulumi providers) load on first
use. Type checkers and editors see the real classes through the `TYPE_CHECKING` imports below, so
`from servingstack import VllmServer` is typed, not `Any`.

The names below are the public API: each component `X` takes `XArgs` (a TypedDict whose fields are
documented in place), and the same components are hosted as the multi-language package
`servingstack` (see tools/package.py and provider/).

The layers, one folder each (arrows run one way: tools -> platform -> components -> planning;
config -> planning):
    planning/   pure planning core: catalogs, sizing, node resources, cost (no Pulumi import)
    config/     the stack config: models, loading, one-line errors, secrets, plan-time checks
    aws/ k8s/ serving/   the public components; platform.py composes them
    tools/      the command line, the offline runtime and its recorded answers, the package host
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "EksCluster": "servingstack.aws.cluster", "EksClusterArgs": "servingstack.aws.cluster",
    "ClusterNetwork": "servingstack.aws.network", "ClusterNetworkArgs": "servingstack.aws.network",
    "GpuNodePool": "servingstack.aws.nodepool", "GpuNodePoolArgs": "servingstack.aws.nodepool",
    "ModelStore": "servingstack.aws.model_store", "ModelStoreArgs": "servingstack.aws.model_store",
    "ModelReadAccess": "servingstack.aws.model_store", "ModelReadAccessArgs": "servingstack.aws.model_store",
    "NvidiaDevicePlugin": "servingstack.k8s.device_plugin", "NvidiaDevicePluginArgs": "servingstack.k8s.device_plugin",
    "NgcCredentials": "servingstack.k8s.credentials", "NgcCredentialsArgs": "servingstack.k8s.credentials",
    "HuggingFaceToken": "servingstack.k8s.credentials", "HuggingFaceTokenArgs": "servingstack.k8s.credentials",
    "VllmServer": "servingstack.serving.vllm", "VllmServerArgs": "servingstack.serving.vllm",
    "TritonServer": "servingstack.serving.triton", "TritonServerArgs": "servingstack.serving.triton",
    "NimServer": "servingstack.serving.nim", "NimServerArgs": "servingstack.serving.nim",
    "ServingArgs": "servingstack.serving.common",
    "ServingPlatform": "servingstack.platform", "ServingPlatformArgs": "servingstack.platform",
    "MODELS": "servingstack.planning.catalog", "INSTANCE_TYPES": "servingstack.planning.catalog",
    "StackConfig": "servingstack.config", "ConfigError": "servingstack.config",
    "load_stack_config": "servingstack.config", "parse_stack_config": "servingstack.config",
}

if TYPE_CHECKING:  # what the lazy loader returns, for mypy, pyright and editors
    from .aws.cluster import EksCluster, EksClusterArgs  # noqa: F401
    from .aws.model_store import ModelReadAccess, ModelReadAccessArgs, ModelStore, ModelStoreArgs  # noqa: F401
    from .aws.network import ClusterNetwork, ClusterNetworkArgs  # noqa: F401
    from .aws.nodepool import GpuNodePool, GpuNodePoolArgs  # noqa: F401
    from .config import ConfigError, StackConfig, load_stack_config, parse_stack_config  # noqa: F401
    from .k8s.credentials import HuggingFaceToken, HuggingFaceTokenArgs, NgcCredentials, NgcCredentialsArgs  # noqa: F401
    from .k8s.device_plugin import NvidiaDevicePlugin, NvidiaDevicePluginArgs  # noqa: F401
    from .planning.catalog import INSTANCE_TYPES, MODELS  # noqa: F401
    from .platform import ServingPlatform, ServingPlatformArgs  # noqa: F401
    from .serving.common import ServingArgs  # noqa: F401
    from .serving.nim import NimServer, NimServerArgs  # noqa: F401
    from .serving.triton import TritonServer, TritonServerArgs  # noqa: F401
    from .serving.vllm import VllmServer, VllmServerArgs  # noqa: F401

__all__ = sorted(_EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'servingstack' has no attribute {name!r}")
