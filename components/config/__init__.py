"""The config layer: pydantic models of the stack config, loading and one-line errors, secrets,
the plan-time hardware checks and the config reference generator.

Nothing outside this package reads `pulumi.Config`; components receive typed arguments. The names
below are the layer's interface (submodules import each other directly, in one direction:
errors <- fields <- serving <- models <- fit <- load)."""

from .autoscaling import AutoscalingConfig, cold_start_seconds, cooldown_seconds, node_autoscaled
from .errors import NAMESPACE, ConfigError, RuleError
from .fit import check_plan, fit_check, pod_resources
from .observability import AlertsConfig, ObservabilityConfig
from .load import TOP_LEVEL_KEYS, load_stack_config, parse_stack_config, raw_config_from_runtime
from .models import (
    CREATE_ONLY_CLUSTER_KEYS,
    ClusterConfig,
    CostConfig,
    DevicePluginConfig,
    Environment,
    GpuNodePoolConfig,
    ModelStoreConfig,
    StackConfig,
    SystemNodePoolConfig,
)
from .secrets import REDACTED, SECRET_KEYS, optional_secret, require_secret, secret_needed, secret_usable
from .serving import (
    CustomModelConfig,
    NimConfig,
    ServingConfig,
    ServingStackKind,
    TritonConfig,
    VllmConfig,
)

__all__ = [
    "AlertsConfig", "AutoscalingConfig", "ObservabilityConfig", "cold_start_seconds", "cooldown_seconds",
    "node_autoscaled",
    "CREATE_ONLY_CLUSTER_KEYS", "NAMESPACE", "REDACTED", "SECRET_KEYS", "TOP_LEVEL_KEYS",
    "ClusterConfig", "ConfigError", "CostConfig", "CustomModelConfig", "DevicePluginConfig", "Environment",
    "GpuNodePoolConfig", "ModelStoreConfig", "NimConfig", "RuleError", "ServingConfig", "ServingStackKind",
    "StackConfig", "SystemNodePoolConfig", "TritonConfig", "VllmConfig",
    "check_plan", "fit_check", "load_stack_config", "parse_stack_config", "pod_resources",
    "optional_secret", "raw_config_from_runtime", "require_secret", "secret_needed", "secret_usable",
]
