"""TritonServer's models beside the LLM: their arguments checked at construction and their files
registered in the model store (aws.s3.BucketObjectv2 for text and local files, aws.s3.ObjectCopy for
s3:// artifacts), in the order serving/triton_models.py gives."""

from __future__ import annotations

from typing import Any, Mapping

import pulumi
import pulumi_aws as aws
from pydantic import TypeAdapter, ValidationError

from ..config import artifacts
from ..config.errors import RuleError
from ..config.triton_models import TritonModelConfig, repository
from ..planning import catalog
from ..planning.triton import RepoModel, RepositoryError
from ..planning.triton_memory import plan_memory
from ..planning.sizing import ServingShape
from .common import defaults
from .triton_models import identity, repository_objects, resource_name

_MODELS = TypeAdapter(list[TritonModelConfig])


def parse_models(args: Mapping[str, Any]) -> list[TritonModelConfig]:
    try:
        return _MODELS.validate_python(list(args.get("models") or []))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        ctx = (err.get("ctx") or {}).get("error")
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("int", "VersionConfig")))
        if isinstance(ctx, RuleError):
            where, message = f"{where}.{ctx.key}", ctx.message
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        raise RuleError("models", f"{where}: {message}") from None


def records_of(args: Mapping[str, Any], models: list[TritonModelConfig]) -> list[RepoModel]:
    try:
        return repository(models, args.get("model_name", "llm"), "models", "model_name")
    except (RepositoryError, RuleError) as exc:
        raise RuleError("models", f"{exc.key.removeprefix('models.')}: {exc.message}") from None


def check_models_args(args: Mapping[str, Any]) -> None:
    """The stack file's repository checks for the `models` argument; with `instance_type`, also the
    GPU memory plan of the whole server (the configured gpu_memory_utilization must leave room)."""
    models = parse_models(args)
    if not models:
        return
    records = records_of(args, models)
    instance = catalog.INSTANCE_TYPES.get(args.get("instance_type") or "")
    model = catalog.MODELS.get(args["model"])
    if instance is None or model is None:
        return
    d = defaults(args)  # type: ignore[arg-type]
    shape = ServingShape(d["replicas"], d["tp"], d["max_model_len"], d["gpu_memory_utilization"], d["dtype"],
                         d["quantization"])
    try:
        plan_memory(args.get("model_name", "llm"), model, shape, instance, records, True, unset_hint=False)
    except RepositoryError as exc:
        key = "gpu_memory_utilization" if exc.key.endswith("gpuMemoryUtilization") else "models"
        raise RuleError(key, exc.message if key != "models" else
                        f"{exc.key.removeprefix('models.')}: {exc.message}") from None


def models_identity(args: Mapping[str, Any]) -> dict[str, str]:
    """Relative key -> content identity of every file of the models beside the LLM ({} without
    them); see triton_models.identity for why it is not on the pod template."""
    models = parse_models(args)
    return identity(repository_objects(models, records_of(args, models))) if models else {}


def register_models(component: pulumi.ComponentResource, name: str, args: Mapping[str, Any],
                    prefix: str) -> list[pulumi.Resource]:
    """Register every object of the models beside the LLM; returns them (the Deployment waits)."""
    models = parse_models(args)
    if not models:
        return []
    records = records_of(args, models)
    bucket = args["bucket_name"]
    written: dict[str, pulumi.Resource] = {}
    for obj in repository_objects(models, records):
        key = f"{prefix.rstrip('/')}/{obj.key}"
        opts = component.child_opts(depends_on=[written[k] for k in obj.after])  # type: ignore[attr-defined]
        res_name = resource_name(name, obj.key)
        if obj.source is not None:
            src_bucket, src_key = obj.source
            source = (pulumi.Output.from_input(bucket).apply(lambda b, k=src_key: f"{b}/{k}")
                      if src_bucket == artifacts.STORE_BUCKET else f"{src_bucket}/{src_key}")
            written[obj.key] = aws.s3.ObjectCopy(res_name, bucket=bucket, key=key, source=source,
                                                 content_type=obj.content_type, metadata_directive="REPLACE",
                                                 opts=opts)
        elif obj.path is not None:
            written[obj.key] = aws.s3.BucketObjectv2(res_name, bucket=bucket, key=key,
                                                     source=pulumi.FileAsset(obj.path),
                                                     content_type=obj.content_type, opts=opts)
        else:
            written[obj.key] = aws.s3.BucketObjectv2(res_name, bucket=bucket, key=key, content=obj.content,
                                                     content_type=obj.content_type, opts=opts)
    return list(written.values())
