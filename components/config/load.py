"""Loading the stack config: raw engine values -> validated StackConfig, or one ConfigError line.

The same function serves `pulumi up` (values from the engine), offline synth (values from a stack
file, config/stackfile.py) and the component package (ServingPlatformArgs): every config key is
checked as the Pulumi CLI and the AWS provider check it (config/namespaces.py), then the
`servingstack:` keys are validated by the models, then against the hardware (config/fit.py).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Collection, Iterator, Mapping, Optional

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from .errors import NAMESPACE, ConfigError, RuleError, did_you_mean, format_value
from .fields import EKS_CLUSTER_NAME, snake_case
from .fit import check_plan
from .models import (
    ADOPT_ONLY_CLUSTER_KEYS,
    ADOPT_ONLY_MODEL_STORE_KEYS,
    CREATE_ONLY_CLUSTER_KEYS,
    StackConfig,
    default_cluster_name,
)
from .namespaces import check_key
from .provider import provider_settings
from .secrets import SECRET_KEYS
from .triton_plan import settle_memory

#: StackConfig fields read from the AWS provider's namespace, never from `servingstack:`.
PROVIDER_FIELDS = {"region": "the AWS provider's `aws:region`",
                   "aws": "the AWS provider's own `aws:profile` / `aws:assumeRoles`"}
TOP_LEVEL_KEYS = {to_camel(k): k for k in StackConfig.model_fields}
#: Top-level keys whose engine value is the string itself, not JSON.
_STRING_KEYS = ("environment", "region")


def parse_stack_config(raw: Mapping[str, Any], *, notices: Optional[list[str]] = None, stack: Optional[str] = None,
                       secret_keys: Optional[Collection[str]] = None) -> StackConfig:
    """Validate a raw config map: every stack key (any namespace; values as strings or JSON strings, as
    the engine passes them, or as already-decoded YAML values). `stack` (when known) checks the
    default cluster name derived from it; `secret_keys` (when known) refuses secrets set in plaintext.
    Raises ConfigError; pure otherwise (notices are appended to `notices`)."""
    notices = notices if notices is not None else []
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, key = check_key(str(full_key), [*TOP_LEVEL_KEYS.keys() - set(PROVIDER_FIELDS), *SECRET_KEYS])
        if namespace != NAMESPACE:
            if namespace == "aws" and key == "region":
                data["region"] = value
            continue
        if key in SECRET_KEYS:
            if secret_keys is not None and full_key not in secret_keys:
                raise ConfigError(key, f"is set in plaintext — remove it and run `pulumi config set --secret "
                                       f"{NAMESPACE}:{key} <value>` (secrets are refused in plaintext even where the "
                                       "stack does not use them)")
            continue
        if key in PROVIDER_FIELDS:
            raise ConfigError(key, f"unknown key — this is {PROVIDER_FIELDS[key]}")
        if key not in TOP_LEVEL_KEYS:
            allowed = ", ".join(sorted([*TOP_LEVEL_KEYS.keys() - set(PROVIDER_FIELDS), *SECRET_KEYS]))
            hint = did_you_mean(key, [*TOP_LEVEL_KEYS.keys() - set(PROVIDER_FIELDS), *SECRET_KEYS])
            raise ConfigError(key, f"unknown key{hint}" if hint else f"unknown key — allowed top-level keys are "
                                                                       f"{allowed}")
        data[key] = _decode(key, value)
    provider = provider_settings(dict(raw))
    if provider:
        data["aws"] = provider
    _usage_notices(data, notices)
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, data) from None
    cfg = settle_memory(cfg)  # Triton with other GPU models: the engine's share of each GPU
    check_plan(cfg)
    if stack is not None and cfg.cluster.name is None:
        name = default_cluster_name(stack)
        if len(name) > 100:
            raise ConfigError("cluster.name", f"is required for stack {format_value(stack)}: the default "
                                              f"{format_value(name)} is not a valid EKS cluster name ({EKS_CLUSTER_NAME}, "
                                              "at most 100 characters) — set cluster.name")
    return cfg


def whole_numbers(value: Any) -> Any:
    """`value` with whole floats as ints, everywhere inside it: the component package host receives
    numbers as protobuf doubles (`replicas: 2.0`), which the strict models would refuse as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _usage_notices(data: Mapping[str, Any], notices: list[str]) -> None:
    """Keys that are valid but ignored in this configuration."""
    cluster = data.get("cluster")
    if isinstance(cluster, dict):
        adopting = cluster.get("create") is False
        keys = CREATE_ONLY_CLUSTER_KEYS if adopting else ADOPT_ONLY_CLUSTER_KEYS
        ignored = [k for k in keys if k in cluster and k != "version"]
        if ignored:
            notices.append(f"notice: {NAMESPACE}:cluster.{', cluster.'.join(ignored)} ignored: "
                           f"{'they only apply' if len(ignored) > 1 else 'it only applies'} when cluster.create is "
                           f"{'true' if adopting else 'false'}")
    store = data.get("modelStore")
    if isinstance(store, dict) and store.get("create") is not False:
        ignored = [k for k in ADOPT_ONLY_MODEL_STORE_KEYS if k in store]
        if ignored:
            notices.append(f"notice: {NAMESPACE}:modelStore.{', modelStore.'.join(ignored)} ignored: it only applies "
                           "when modelStore.create is false (a new bucket gets its own KMS key)")


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _STRING_KEYS:
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # JSONDecodeError, over-long integers, absurd nesting
        raise ConfigError(key, f"{format_value(value)} is not valid JSON/YAML for an object — see the README config "
                               "reference") from None


_HINTS = {
    "string_type": {int: "YAML read it as a number: quote it", float: "YAML read it as a number: quote it",
                    bool: "YAML read it as a boolean: quote it"},
    "int_type": {bool: "a boolean is not an integer", str: "write the number without quotes",
                 float: "write a whole number"},
    "bool_type": {str: "use true or false, unquoted", int: "use true or false"},
    "float_type": {str: "write the number without quotes", bool: "a boolean is not a number"},
}


def _to_config_error(exc: ValidationError, data: Mapping[str, Any]) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    message = err["msg"]
    is_key = "[key]" in loc
    loc = [p for p in loc if p != "[key]"]
    if isinstance(ctx_error, RuleError):
        # A model validator: its location is the model; the rule names the field inside it.
        loc = loc + ctx_error.key.split(".")
        message = ctx_error.message
        value = _dig(data, loc)
    else:
        message = message.removeprefix("Value error, ")
        value = err.get("input")
    if loc[:1] == ["region"]:
        loc[0] = "aws:region"  # read from the aws provider's config, not the servingstack: namespace
    if loc[:1] == ["aws"]:
        loc = ["aws:profile" if loc[1:2] == ["profile"] else "aws:assumeRoles"]
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = did_you_mean(loc[-1], allowed)
        if hint:
            return ConfigError(key, f"unknown key{hint}")
        return ConfigError(key, f"unknown key — allowed keys are {', '.join(allowed)}" if allowed else
                           "unknown key — see the README config reference")
    if err["type"] == "missing":
        return ConfigError(key, "is required")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    hint = next((h for t, h in _HINTS.get(err["type"], {}).items() if type(value) is t), None)
    if hint and isinstance(value, str) and not _looks_numeric(value):
        hint = "use true or false" if err["type"] == "bool_type" else None
    if hint:
        message = f"{message} — {hint}"
    if isinstance(ctx_error, RuleError) or (err["type"] == "value_error" and _names_value(message, value)):
        return ConfigError(key, f"{message}{suffix}")
    what = f"key {format_value(value)}" if is_key else format_value(value)
    joiner = " " if err["type"] == "value_error" and message[:1].islower() else " — "
    return ConfigError(key, f"{what}{joiner}{message}{suffix}")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text in ("true", "false")


def _names_value(message: str, value: Any) -> bool:
    """Whether a validator's own message already quotes the bad value (or the bad list item)."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and len(v) < 100 and repr(v) in message for v in items)


def _allowed_keys(loc: list[str]) -> list[str]:
    """camelCase keys of the config object at `loc` (list indexes skipped)."""
    model: Any = StackConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(snake_case(part)) if isinstance(model, type) else None
        if field is None:
            return []
        model = next((a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return sorted(to_camel(k) for k in model.model_fields)


def _dig(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def raw_config_from_runtime() -> dict[str, Any]:
    """Every config value the engine (or synth) handed the program, all namespaces (the AWS
    provider's `aws:region`, `aws:profile`, `aws:assumeRoles` among them)."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return raw


def _runtime_secret_keys(raw: Mapping[str, Any]) -> set[str]:
    from pulumi.runtime import config as runtime_config

    env = set(runtime_config.get_config_secret_keys_env())
    return {k for k in raw if k in env or runtime_config.is_config_secret(k)}


_collector: Optional[list[str]] = None


@contextmanager
def collecting_notices(into: list[str]) -> Iterator[list[str]]:
    """Within the block, load_stack_config appends its notices to `into` instead of printing them
    (offline synth prints them once the whole run has succeeded)."""
    global _collector
    previous, _collector = _collector, into
    try:
        yield into
    finally:
        _collector = previous


def load_stack_config() -> StackConfig:
    """Read and validate the stack's config from the running Pulumi program."""
    import pulumi

    notices: list[str] = []
    raw = raw_config_from_runtime()
    cfg = parse_stack_config(raw, notices=notices, stack=pulumi.get_stack(), secret_keys=_runtime_secret_keys(raw))
    for notice in notices:
        if _collector is not None:
            _collector.append(notice)
        else:
            print(notice, file=sys.stderr)
    return cfg
