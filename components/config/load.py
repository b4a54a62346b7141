"""Loading the stack config: raw engine values -> validated StackConfig, or one ConfigError line."""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping, Optional

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from .errors import NAMESPACE, ConfigError, RuleError, format_value
from .fields import snake_case
from .fit import check_plan
from .models import CREATE_ONLY_CLUSTER_KEYS, StackConfig
from .secrets import SECRET_KEYS


TOP_LEVEL_KEYS = {to_camel(k): k for k in StackConfig.model_fields}


def parse_stack_config(raw: Mapping[str, Any], *, notices: Optional[list[str]] = None) -> StackConfig:
    """Validate a raw `servingstack:`-namespaced config map (values as strings or JSON strings, as the
    engine passes them, or as already-decoded YAML values). Raises ConfigError; pure otherwise."""
    notices = notices if notices is not None else []
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            if ns == "aws" and key == "region":
                data["region"] = value
            continue
        if key in SECRET_KEYS:
            continue
        if key == "region":
            raise ConfigError(key, "unknown key — the region is the AWS provider's `aws:region`")
        if key not in TOP_LEVEL_KEYS:
            allowed = ", ".join(sorted([*TOP_LEVEL_KEYS.keys() - {"region"}, *SECRET_KEYS]))
            raise ConfigError(key, f"unknown key — allowed top-level keys are {allowed}")
        data[key] = _decode(key, value)
    cluster = data.get("cluster")
    if isinstance(cluster, dict) and cluster.get("create") is False:
        ignored = [k for k in CREATE_ONLY_CLUSTER_KEYS if k in cluster and k != "version"]
        if ignored:
            notices.append(f"notice: servingstack:cluster.{', cluster.'.join(ignored)} ignored: "
                           "they only apply when cluster.create is true")
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, data) from None
    check_plan(cfg)
    return cfg


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key == "environment" or key == "region":
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(key, f"{value!r} is not valid JSON/YAML for an object — see the README config reference")


def _to_config_error(exc: ValidationError, data: Mapping[str, Any]) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    message = err["msg"]
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
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"allowed keys are {', '.join(allowed)}" if allowed else "see the README config reference"
        return ConfigError(key, f"unknown key — {hint}")
    if err["type"] == "missing":
        return ConfigError(key, "is required")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if isinstance(ctx_error, RuleError) or (err["type"] == "value_error" and _names_value(message, value)):
        return ConfigError(key, f"{message}{suffix}")
    return ConfigError(key, f"{format_value(value)} — {message}{suffix}")


def _names_value(message: str, value: Any) -> bool:
    """Whether a validator's own message already quotes the bad value (or the bad list item)."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and repr(v) in message for v in items)


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
    """Every `servingstack:` / `aws:region` value the engine (or synth) handed the program."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return {k: v for k, v in raw.items() if k.startswith(f"{NAMESPACE}:") or k == "aws:region"}


def load_stack_config() -> StackConfig:
    """Read and validate the stack's config from the running Pulumi program."""
    notices: list[str] = []
    cfg = parse_stack_config(raw_config_from_runtime(), notices=notices)
    for notice in notices:
        print(notice, file=sys.stderr)
    return cfg
