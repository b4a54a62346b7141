"""Secret config: which secrets a stack needs, and reading them as secret Outputs only."""

from __future__ import annotations

import pulumi

from ..planning import catalog, engines
from .errors import NAMESPACE, ConfigError
from .models import StackConfig

SECRET_KEYS = ("ngcApiKey", "hfToken")
"""The only secret config keys; they must be set with `pulumi config set --secret`."""
REDACTED = "[secret]"
"""What offline synth records in place of a secret value."""


def secret_needed(cfg: StackConfig) -> dict[str, bool]:
    """Which secret config keys this stack needs: NGC for NIM releases that need a key (1.x always;
    2.x only Production Branch images and releases before 2.0.10; the Triton images on nvcr.io are
    public); HF for gated Hugging Face downloads by vLLM/Triton, and for the benchmark's tokenizer
    when it is gated."""
    s = cfg.serving
    ngc = s.stack == "nim" and engines.nim_needs_api_key(_nim_image(cfg), s.nim.release)
    hf = (s.stack != "nim" and s.weights_source == "huggingface"
          and s.architecture.gated)
    return {"ngcApiKey": ngc, "hfToken": hf or benchmark_tokenizer_gated(cfg)}


def benchmark_tokenizer_gated(cfg: StackConfig) -> bool:
    """Whether the benchmark downloads a gated tokenizer (the served model's, unless benchmark.tokenizer
    names another; a tokenizer outside the catalog is taken as public)."""
    b = cfg.benchmark
    if not b.enabled:
        return False
    name = b.tokenizer or cfg.serving.model
    if name == cfg.serving.model:
        return cfg.serving.architecture.gated
    model = catalog.MODELS.get(name)
    return bool(model and model.gated)


def secret_usable(cfg: StackConfig) -> dict[str, bool]:
    """Which secret keys the stack uses when they are set, needed or not (a NIM 2.x public model
    still takes an NGC key for the image pull and downloads when one is given)."""
    needed = secret_needed(cfg)
    return {**needed, "ngcApiKey": needed["ngcApiKey"] or cfg.serving.stack == "nim"}


def _nim_image(cfg: StackConfig) -> str:
    image = cfg.serving.nim.image or catalog.nim_image_for(cfg.serving.model)
    assert image is not None, "validated by ServingConfig"
    return image


def optional_secret(key: str) -> "pulumi.Output[str] | None":
    """A secret config value as a secret Output when it is set, else None (set in plaintext fails
    as in require_secret)."""
    from pulumi.runtime import config as runtime_config

    if runtime_config.get_config(f"{NAMESPACE}:{key}") is None:
        return None
    return require_secret(key)


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
