"""Component arguments checked like stack files, before anything is registered.

Every public component hands its args dict to the base (`Component.__init__(type, name, opts, args)`),
which checks it with the stack config's own machinery and raises one ArgumentError line (a
ConfigError, so a `pulumi.RunError`: no traceback, exit 2 from the CLI) naming the component, its
resource name, the argument and the fix:

1. keys: an unknown key is refused with the near one (`config.errors.did_you_mean`; a camelCase
   spelling points to its snake_case name); a missing required key is named;
2. types, from the component's Args TypedDict, strictly (no "2" for 2, no 2.5 for an int): a
   `pulumi.Input[...]` argument takes an Output or awaitable anywhere inside it, a plain one refuses
   an Output (it is read while the program runs, before outputs resolve);
3. ranges, patterns and choices of the stack-config field an argument mirrors (FIELDS: VllmServer's
   `replicas` is checked by `ServingConfig.replicas`, so a component accepts what a stack file
   accepts), plus a few argument-only constraints;
4. the component's cross-argument rules: its `check_args` classmethod, raising `RuleError` (or the
   planning core's `FitError`, e.g. the model-fit check) with the argument it blames;
5. Kubernetes components (their Args declare `allow_default_provider`): an explicit Kubernetes
   provider in `opts` (or inherited from the parent), unless `allow_default_provider` is true.

Adding an argument: declare it (with its docstring and default) in the Args TypedDict; its type is
then checked. If a stack-config field means the same, map it in FIELDS; cross-argument rules go in
the component's `check_args`.
"""

import functools
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, Callable, ForwardRef, Literal, Optional, Union

import pulumi
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WrapValidator
from typing_extensions import NotRequired, Required

from .config.errors import ConfigError, RuleError, did_you_mean, format_value
from .config.fields import DNS_LABEL, snake_case
from .config.models import (
    ClusterConfig,
    DevicePluginConfig,
    GpuNodePoolConfig,
    ModelStoreConfig,
    StackConfig,
    SystemNodePoolConfig,
)
from .config.serving import NimConfig, ServingConfig, TritonConfig, VllmConfig
from .planning.sizing import FitError

PROVIDER_FLAG = "allow_default_provider"
"""The argument that marks a Kubernetes component (and lets it use Pulumi's default provider)."""

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
ZONE = r"^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$"


class ArgumentError(ConfigError):
    """A component argument that cannot work. One line: component, resource name, argument, value, fix."""

    def __init__(self, component: str, resource: str, key: str, message: str):
        super().__init__(key, message)
        self.component = component
        self.resource = resource
        Exception.__init__(self, f"{component} {resource!r}: {key}: {message}")


class _Field:
    """An argument checked by a stack-config model's field (its constraints and validators)."""

    def __init__(self, model: type[BaseModel], field: Optional[str] = None):
        self.model = model
        self.field = field


def cfg(model: type[BaseModel], field: Optional[str] = None) -> _Field:
    return _Field(model, field)


def _dns(pattern: str = DNS_LABEL) -> Any:
    return Annotated[str, Field(pattern=pattern)]


_SERVING: dict[str, Any] = {
    **{k: cfg(ServingConfig) for k in (
        "namespace", "model", "replicas", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization",
        "max_num_seqs", "dtype", "quantization", "served_model_name", "cpu_per_gpu", "memory_gib_per_gpu",
        "startup_seconds", "service_name", "allowed_namespaces")},
    "instance_type": cfg(GpuNodePoolConfig),
    "image": cfg(VllmConfig),
    "weights_gib": Annotated[float, Field(gt=0, le=16384)],
    "service_account": _dns(),
    "hf_token_secret": _dns(DNS_SUBDOMAIN),
}

#: component class name -> argument -> the stack-config field (or annotated type) that checks it.
FIELDS: dict[str, dict[str, Any]] = {
    "EksCluster": {
        "cluster_name": cfg(ClusterConfig, "name"), "region": cfg(StackConfig),
        **{k: cfg(ClusterConfig) for k in (
            "version", "vpc_cidr", "availability_zone_count", "public_access_cidrs", "admin_principal_arns",
            "log_types", "subnet_ids")},
        **{f"system_{k}": cfg(SystemNodePoolConfig, k) for k in ("instance_type", "min_size", "max_size",
                                                                 "desired_size")},
        "required_zones": list[Annotated[str, Field(pattern=ZONE)]],
    },
    "ClusterNetwork": {"vpc_cidr": cfg(ClusterConfig),
                       "availability_zones": Annotated[list[Annotated[str, Field(pattern=ZONE)]], Field(min_length=2)]},
    "GpuNodePool": {
        "pool_name": cfg(GpuNodePoolConfig, "name"),
        **{k: cfg(GpuNodePoolConfig) for k in (
            "instance_type", "ami_type", "capacity_type", "capacity_reservation_id", "min_size", "max_size",
            "desired_size", "disk_size_gib", "metadata_hop_limit", "max_unavailable", "labels")},
    },
    "ModelStore": {k: cfg(ModelStoreConfig) for k in ("bucket_name", "kms_key_arn", "noncurrent_version_days")},
    "ModelReadAccess": {"namespace": cfg(ServingConfig), "service_account": _dns(),
                        "model_prefix": cfg(ModelStoreConfig)},
    "NvidiaDevicePlugin": {
        **{k: cfg(DevicePluginConfig) for k in (
            "chart_version", "mig_strategy", "time_slicing_replicas", "dcgm_exporter_chart_version")},
        "pool_names": list[_dns()], "metrics_pool_names": list[_dns()],
    },
    "NgcCredentials": {"namespace": cfg(ServingConfig), "pull_secret_name": _dns(DNS_SUBDOMAIN),
                       "api_secret_name": _dns(DNS_SUBDOMAIN)},
    "HuggingFaceToken": {"namespace": cfg(ServingConfig), "secret_name": _dns(DNS_SUBDOMAIN)},
    "VllmServer": {
        **_SERVING,
        **{k: cfg(VllmConfig) for k in ("kv_cache_dtype", "load_format", "speculative_model",
                                        "num_speculative_tokens", "extra_args")},
        "region": cfg(StackConfig), "model_uri": Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]+/.*$")],
    },
    "TritonServer": {**_SERVING, "image": cfg(TritonConfig), "model_name": cfg(TritonConfig),
                     "repository_poll_seconds": cfg(TritonConfig), "region": cfg(StackConfig),
                     "repository_prefix": cfg(ModelStoreConfig, "model_prefix")},
    "NimServer": {**_SERVING, "image": cfg(NimConfig), "model_profile": cfg(NimConfig)},
}


# ---- the check ---------------------------------------------------------------------------------------

def check_arguments(component: type, name: str, args: Any, opts: Optional[pulumi.ResourceOptions],
                    rules: Optional[Callable[[Mapping[str, Any]], None]] = None) -> None:
    """Check `args` for `component` (resource `name`); raise ArgumentError on the first problem."""
    comp = component.__name__

    def fail(key: str, message: str) -> ArgumentError:
        return ArgumentError(comp, name, key if key.startswith("opts") else f"args.{key}" if key else "args", message)

    spec = args_spec(component)
    if not isinstance(args, Mapping):
        raise fail("", f"{format_value(args) if not isinstance(args, pulumi.Output) else 'an Output'} — the "
                       f"arguments are a dict ({spec.type_name}), e.g. {comp}(name, {{...}}, opts)")
    for key in args:
        if not isinstance(key, str) or key not in spec.fields:
            raise fail(str(key), f"unknown argument{_suggest(str(key), spec.fields)}")
    for key in spec.required:
        if key not in args:
            raise fail(key, f"is required ({spec.describe(key)})")
    for key, value in args.items():
        problem = spec.fields[key].check(value)
        if problem:
            raise fail(*_at(key, problem))
    for key, value in args.items():
        problem = _check_config_field(comp, key, value)
        if problem:
            raise fail(key, problem)
    if rules is not None:
        try:
            rules(args)
        except (RuleError, FitError) as exc:
            raise fail(_arg_key(exc.key, spec.fields), _snake_words(exc.message, spec.fields)) from None
    if PROVIDER_FLAG in spec.fields and not args.get(PROVIDER_FLAG) and not has_kubernetes_provider(opts):
        raise fail("opts.providers", "no Kubernetes provider — pass one (e.g. `opts=pulumi.ResourceOptions("
                                     "providers={\"kubernetes\": cluster.provider})` with an EksCluster's provider), "
                                     f"or set args {PROVIDER_FLAG}: True to use Pulumi's default provider (the "
                                     "ambient kubeconfig's current context)")


def _suggest(key: str, known: Mapping[str, Any]) -> str:
    snake = snake_case(key)
    if snake != key and snake in known:
        return f" — did you mean {snake!r}? (arguments are snake_case)"
    hint = did_you_mean(snake, known) or did_you_mean(key, known)
    return hint or f" — see help() of the component's Args for its {len(known)} arguments"


def _at(key: str, problem: tuple[str, str]) -> tuple[str, str]:
    path, message = problem
    return (f"{key}.{path}" if path else key), message


def _arg_key(key: str, fields: Mapping[str, Any]) -> str:
    """An argument name for a rule's key: `serving.tensorParallelSize` -> `tensor_parallel_size`."""
    last = snake_case(key.split(".")[-1])
    return last if last in fields else snake_case(key.replace(".", "_"))


def _snake_words(message: str, fields: Mapping[str, Any]) -> str:
    """Config spellings in a shared rule's message (`tensorParallelSize 2`, `gpuNodePool.instanceType`)
    become the component's argument names."""
    def repl(m: re.Match) -> str:
        snake = snake_case(m.group(2))
        return snake if snake in fields else m.group(0)

    return re.sub(r"\b((?:serving|gpuNodePool|cluster)\.)?([a-z]+(?:[A-Z][a-z0-9]*)+)\b", repl, message)


def _check_config_field(comp: str, key: str, value: Any) -> Optional[str]:
    constraint = FIELDS.get(comp, {}).get(key)
    if constraint is None or contains_output(value):
        return None
    if isinstance(constraint, _Field):
        field = constraint.field or key
        try:
            constraint.model.model_validate({field: value})
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                if err["loc"] and err["loc"][0] == field:  # the field's own check, not a rule across defaults
                    return _message(err, value)
        return None
    try:
        _adapter(constraint).validate_python(value)
    except ValidationError as exc:
        return _message(exc.errors(include_url=False)[0], value)
    return None


def _message(err: Any, value: Any) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    bad = _dig(value, err["loc"][1:]) if err["loc"] and isinstance(err["loc"][0], str) else value
    items = bad if isinstance(bad, list) else [bad]
    if any(isinstance(v, str) and repr(v) in message for v in items):
        return message
    return f"{format_value(bad)} — {message}"


@functools.lru_cache(maxsize=None)
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def _dig(value: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
    return value


def is_output(value: Any) -> bool:
    return isinstance(value, pulumi.Output) or inspect.isawaitable(value)


def contains_output(value: Any) -> bool:
    if is_output(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_output(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_output(v) for v in value)
    return False


def has_kubernetes_provider(opts: Optional[pulumi.ResourceOptions]) -> bool:
    """Whether `opts` (or its parent) gives resources an explicit Kubernetes provider."""
    if opts is None:
        return False
    if opts.provider is not None and getattr(opts.provider, "package", None) == "kubernetes":
        return True
    providers = opts.providers
    if isinstance(providers, Mapping):
        if providers.get("kubernetes") is not None:
            return True
    elif providers:
        if any(getattr(p, "package", None) == "kubernetes" for p in providers):
            return True
    parent = opts.parent
    return parent is not None and parent.get_provider("kubernetes:core/v1:Namespace") is not None


# ---- the Args TypedDict as validators ------------------------------------------------------------------

class _ArgField:
    def __init__(self, annotation: Any):
        self.annotation = annotation
        self.plain = _input_base(annotation) is None
        self.adapter = TypeAdapter(_strict(annotation, outputs_ok=False), config=ConfigDict(strict=True))

    def check(self, value: Any) -> Optional[tuple[str, str]]:
        """(path inside the value, message) of the first type problem, or None."""
        try:
            self.adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            path = [p for p in _real_path(value, err["loc"])]
            bad = _dig(value, tuple(path))
            if is_output(bad):
                return ".".join(map(str, path)), ("is a pulumi Output — this argument is read while the program "
                                                  "runs, before outputs resolve: pass a plain value")
            return ".".join(map(str, path)), f"{format_value(bad)} — {_type_message(err, self.annotation)}"
        return None


def _real_path(value: Any, loc: tuple) -> list:
    """The parts of a pydantic error location that index the value (not union member tags)."""
    out = []
    for part in loc:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
            out.append(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
            out.append(part)
    return out


def _type_message(err: Any, annotation: Any) -> str:
    return f"{str(err['msg']).replace('Input should', 'should')} (expected {_type_name(annotation)})"


def _type_name(annotation: Any) -> str:
    annotation = _unrequired(annotation)
    base = _input_base(annotation)
    if base is not None:
        return f"{_type_name(base)} or an Output of it"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(annotation))}]"
    return getattr(annotation, "__name__", str(annotation))


def _unrequired(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (NotRequired, Required, typing.NotRequired, typing.Required):
        annotation = typing.get_args(annotation)[0]
    return annotation


def _input_base(annotation: Any) -> Any:
    """T for `pulumi.Input[T]` (Union[T, Awaitable[T], 'Output[T]']), else None."""
    annotation = _unrequired(annotation)
    if typing.get_origin(annotation) is not Union:
        return None
    members = typing.get_args(annotation)
    awaitable = [m for m in members if typing.get_origin(m) is Awaitable]
    output = [m for m in members if isinstance(m, ForwardRef) or typing.get_origin(m) is pulumi.Output
              or m is pulumi.Output]
    return typing.get_args(awaitable[0])[0] if awaitable and output else None


def _pass_outputs(value: Any, handler: Callable[[Any], Any]) -> Any:
    return value if is_output(value) else handler(value)


def _strict(annotation: Any, outputs_ok: bool) -> Any:
    """A pydantic type for an Args annotation: strict scalars; Outputs accepted inside Inputs."""
    annotation = _unrequired(annotation)
    base = _input_base(annotation)
    if base is not None:
        return _strict(base, outputs_ok=True)
    origin, params = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, object) or isinstance(annotation, (ForwardRef, str)):
        result: Any = Any
    elif origin in (list, typing.get_origin(typing.Sequence[int])):
        result = list[_strict(params[0], outputs_ok)] if params else list
    elif origin in (dict, typing.get_origin(typing.Mapping[str, int])):
        result = dict[_strict(params[0], False), _strict(params[1], outputs_ok)] if params else dict  # type: ignore[misc]
    elif origin is Union:
        result = Union[tuple(_strict(p, outputs_ok) for p in params)]  # type: ignore[valid-type]
    elif typing.is_typeddict(annotation) or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        result = Any  # nested structures are checked by the component itself
    else:
        result = annotation  # str, int, float, bool, Literal[...], enums
    return Annotated[result, WrapValidator(_pass_outputs)] if outputs_ok else result


class ArgsSpec:
    def __init__(self, args_type: Any):
        self.type_name = getattr(args_type, "__name__", "dict")
        annotations = dict(getattr(args_type, "__annotations__", {}))
        self.fields = {k: _ArgField(a) for k, a in annotations.items()}
        self.required = [k for k in annotations if k in getattr(args_type, "__required_keys__", ())]
        self.docs = {k: _type_name(a) for k, a in annotations.items()}

    def describe(self, key: str) -> str:
        return f"{self.type_name}[{key!r}]: {self.docs[key]}"


@functools.lru_cache(maxsize=None)
def args_spec(component: type) -> ArgsSpec:
    """The checks for `component`'s Args TypedDict (the annotation of its __init__'s `args`)."""
    annotation = inspect.signature(component.__init__).parameters["args"].annotation
    return ArgsSpec(annotation)
