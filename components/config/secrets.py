"""Secret config: which secrets a stack needs, and reading them as secret Outputs only."""

from __future__ import annotations

import pulumi

from .errors import NAMESPACE, ConfigError
from .models import StackConfig

SECRET_KEYS = ("ngcApiKey", "hfToken")
"""The only secret config keys; they must be set with `pulumi config set --secret`."""
REDACTED = "[secret]"
"""What offline synth records in place of a secret value."""


def secret_needed(cfg: StackConfig) -> dict[str, bool]:
    """Which secret config keys this stack needs: NGC for NIM (its image and model downloads; the
    Triton images on nvcr.io are public); HF for gated Hugging Face downloads by vLLM/Triton."""
    ngc = cfg.serving.stack == "nim"
    hf = (cfg.serving.stack != "nim" and cfg.serving.weights_source == "huggingface"
          and cfg.serving.architecture.gated)
    return {"ngcApiKey": ngc, "hfToken": hf}


def require_secret(key: str) -> pulumi.Output[str]:
    """A secret config value as a secret Output. Fails in one line if it is missing or was set in
    plaintext (it must come from `pulumi config set --secret`)."""
    from pulumi.runtime import config as runtime_config

    full = f"{NAMESPACE}:{key}"
    value = runtime_config.get_config(full)
    if value is None:
        raise ConfigError(key, f"is not set — run `pulumi config set --secret {full} <value>`")
    # The language host passes secret keys either through set_all_config or the environment.
    if not (runtime_config.is_config_secret(full) or full in runtime_config.get_config_secret_keys_env()):
        raise ConfigError(key, f"is set in plaintext — remove it and run `pulumi config set --secret {full} <value>`")
    return pulumi.Output.secret(str(value))
