"""TritonServer: NVIDIA Triton Inference Server with the vLLM backend, its model repository
generated as code and uploaded to the model store, read with the pod's IAM role (IRSA)."""

from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..planning import catalog
from ..k8s import podspec
from . import triton_repo
from .common import ServingArgs, ServingComponent, defaults, hf_token_mount, node_selector, warn_if_gated_without_token
from .triton_repository import check_models_args, register_models
from .vllm import image_waivers

TRITON_UID = 1000  # the image's triton-server user
REPOSITORY_HASH_ANNOTATION = "servingstack.io/repository-sha256"


class TritonServerArgs(ServingArgs):
    bucket_name: pulumi.Input[str]
    """Model-store bucket the repository is uploaded to and polled from."""
    repository_prefix: NotRequired[str]
    """Key prefix of the repository inside the bucket. Default "models/triton/"."""
    model_name: NotRequired[str]
    """Name of the model in the repository (URL path /v2/models/<name>). Default "llm"."""
    repository_poll_seconds: NotRequired[int]
    """How often Triton polls the repository for changes, seconds. Default 30."""
    region: NotRequired[str]
    """Bucket region (AWS_DEFAULT_REGION for Triton's S3 client). Default "us-east-1"."""
    hf_token_secret: NotRequired[str]
    """Secret (key HF_TOKEN) for gated Hugging Face models; mounted as a file. Default unset (anonymous)."""
    models: NotRequired[list[dict[str, Any]]]
    """Models served beside the LLM in the same repository, each shaped like a stack file's
    `serving.triton.models` entry (snake_case or camelCase keys: name, kind, artifact, versions,
    version_policy, inputs, outputs, max_batch_size, dynamic_batching, instance_groups, gpu_memory_gib,
    steps, parameters). Checked at construction like the stack file (ensemble wiring, local ONNX
    files, and GPU memory against `instance_type` when given). Default [] (the LLM alone)."""


def repository_uri(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix.rstrip('/')}"


def triton_args(repository: str, poll_seconds: int) -> list[str]:
    """The reference command (kept in args so the image's NVIDIA entrypoint still runs). Pure.

    Poll mode stays, as in the reference deployment, for changes made to the repository outside the
    program and for the other models (`models`, reloaded in place); changes the program makes to the
    LLM's own files roll the pods (their hash on the pod template), so they never depend on a poll
    loading a second copy of the engine beside the first."""
    return ["tritonserver", f"--model-repository={repository}", "--model-control-mode=poll",
            f"--repository-poll-secs={poll_seconds}"]


def repository_files(args: TritonServerArgs) -> triton_repo.Repository:
    d = defaults(args)
    return triton_repo.repository_files(
        args.get("model_name", "llm"), model=args["model"], tensor_parallel_size=d["tp"],
        max_model_len=d["max_model_len"], gpu_memory_utilization=d["gpu_memory_utilization"],
        max_num_seqs=d["max_num_seqs"], enable_prefix_caching=d["enable_prefix_caching"], dtype=d["dtype"],
        quantization=d["quantization"])


def triton_workload(name: str, args: TritonServerArgs, bucket: str, labels: dict[str, str],
                    tolerations: list[dict]) -> podspec.ServingWorkload:
    d = defaults(args)
    image = args.get("image") or catalog.TRITON_IMAGE
    region = args.get("region", "us-east-1")
    env = [
        {"name": "AWS_DEFAULT_REGION", "value": region},
        {"name": "AWS_REGION", "value": region},
        {"name": "HOME", "value": "/cache"},
        {"name": "HF_HOME", "value": "/cache/huggingface"},
    ]
    volumes, mounts, token_env = hf_token_mount(args.get("hf_token_secret"))
    env += token_env
    return podspec.ServingWorkload(
        name=f"triton-{d['model_slug']}", namespace=args["namespace"], stack="triton", model_slug=d["model_slug"],
        image=image, container_name="triton",
        args=triton_args(repository_uri(bucket, args.get("repository_prefix", "models/triton/")),
                         args.get("repository_poll_seconds", 30)),
        probes=podspec.Probes(ready_path="/v2/health/ready", live_path="/v2/health/live",
                              startup_seconds=d["startup_seconds"]),
        gpus=d["tp"], replicas=d["replicas"], cpu=d["cpu"], memory_gib=d["memory_gib"], shm_gib=d["shm_gib"],
        cache_mount_path="/cache", cache_size_gib=d["cache_size_gib"],
        service_account=args.get("service_account", "llm-server"), tolerations=tolerations,
        node_selector=node_selector(labels), env=env, extra_volumes=volumes, extra_mounts=mounts,
        ports=[{"name": "http", "containerPort": 8000}, {"name": "grpc", "containerPort": 8001},
               {"name": "metrics", "containerPort": 8002}],
        run_as_user=TRITON_UID, hard_spread=args.get("hard_spread", False), metrics_port=8002,
        pod_annotations={REPOSITORY_HASH_ANNOTATION: triton_repo.repository_hash(repository_files(args))},
        checkov_waivers={**image_waivers(image),
                         "CKV_K8S_40": "the Triton image's files belong to its triton-server user (UID 1000)"},
    )


class TritonServer(ServingComponent):
    """Triton with the vLLM backend polling an S3 model repository generated from config: KServe v2
    HTTP on 8000 (/v2/models/<name>/generate), gRPC on 8001, metrics on 8002."""

    repository: pulumi.Output[str]
    """s3:// URI of the model repository."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        super().check_args(args)
        check_models_args(args)

    def __init__(self, name: str, args: TritonServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:TritonServer", name, opts, args)
        warn_if_gated_without_token(args, args.get("hf_token_secret"))
        prefix = args.get("repository_prefix", "models/triton/")
        objects = [
            aws.s3.BucketObjectv2(
                f"{name}-{key.replace('/', '-').replace('.', '-')}", bucket=args["bucket_name"],
                key=f"{prefix.rstrip('/')}/{key}", content=content,
                content_type="application/json" if key.endswith(".json") else "text/plain",
                opts=self.child_opts())
            for key, content in repository_files(args).items()
        ]
        objects += register_models(self, name, args, prefix)
        bucket = pulumi.Output.from_input(args["bucket_name"])
        self.repository = bucket.apply(lambda b: repository_uri(b, prefix))
        self._register(name, args, lambda labels, tols, b: triton_workload(name, args, b, labels, tols),
                       extra_inputs=(bucket,), extra_outputs={"repository": self.repository},
                       depends_on=objects)  # Triton must find its repository when it starts
