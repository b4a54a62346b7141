"""What vLLM, Triton and NIM components share: their common arguments and the registration of the
ServiceAccount, Deployment, Service, PodDisruptionBudget and NetworkPolicy built by k8s/podspec.py."""

from typing import Any, Callable, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from ..planning import catalog, resources, sizing
from ..planning.node import GPU_PRESENT_LABEL, POOL_LABEL
from ..k8s import podspec
from ..base import Component

HF_TOKEN_DIR = "/var/run/secrets/huggingface"


class ServingArgs(TypedDict):
    namespace: str
    """Namespace to deploy into (must exist)."""
    model: str
    """Hugging Face model id, e.g. "meta-llama/Llama-3.1-70B-Instruct"."""
    node_labels: pulumi.Input[dict[str, str]]
    """Labels of the GPU pool to run on (a GpuNodePool's `labels` output)."""
    tolerations: pulumi.Input[list[dict[str, str]]]
    """Tolerations for the pool's taints (a GpuNodePool's `tolerations` output)."""
    replicas: NotRequired[int]
    """Pod replicas. Default 2."""
    tensor_parallel_size: NotRequired[int]
    """GPUs per replica (request = limit). Default 2."""
    max_model_len: NotRequired[int]
    """Maximum sequence length in tokens (prompt + output). Default 8192."""
    gpu_memory_utilization: NotRequired[float]
    """Fraction of each GPU's memory the engine may use. Default 0.92."""
    max_num_seqs: NotRequired[int]
    """Maximum sequences batched at once. Default 64."""
    enable_prefix_caching: NotRequired[bool]
    """Reuse KV cache across requests sharing a prefix. Default true."""
    dtype: NotRequired[str]
    """Compute dtype: auto (default), bfloat16, float16, half, float32."""
    quantization: NotRequired[str]
    """Weight quantization: awq, gptq or fp8. Default unset (none)."""
    served_model_name: NotRequired[str]
    """Model name clients send in requests. Default: the model id."""
    image: NotRequired[str]
    """Container image. Default: the stack's pinned image."""
    local_nvme: NotRequired[pulumi.Input[bool]]
    """Whether the pool's ephemeral storage is NVMe (GpuNodePool `local_nvme`). Informational. Default false."""
    cpu_per_gpu: NotRequired[float]
    """CPU cores requested (and limited) per GPU. Default 8."""
    memory_gib_per_gpu: NotRequired[int]
    """Memory GiB requested (and limited) per GPU, before /dev/shm. Default 96."""
    startup_seconds: NotRequired[int]
    """Start-up probe budget, seconds. Default derived from the model's weight size (>= 600; >= 1840 for 100+ GiB)."""
    weights_gib: NotRequired[float]
    """Weight size, GiB, for models outside the catalog (sizes the cache and start-up budget).
    Default: the catalog's size for the model, 100 GiB for unknown models."""
    service_name: NotRequired[str]
    """Name of the ClusterIP Service on port 8000. Default "llm"."""
    service_account: NotRequired[str]
    """ServiceAccount name. Default "llm-server"."""
    service_account_annotations: NotRequired[pulumi.Input[dict[str, str]]]
    """Annotations for the ServiceAccount (e.g. the IRSA role ARN). Default {}."""
    allowed_namespaces: NotRequired[list[str]]
    """Other namespaces whose pods may reach the serving ports. Default []."""
    hard_spread: NotRequired[bool]
    """One replica per node (true) or spread when possible (false, default)."""


def defaults(args: ServingArgs) -> dict[str, Any]:
    """Resolved common settings (defaults applied, derived sizes computed). Pure."""
    tp = args.get("tensor_parallel_size", 2)
    weights = args.get("weights_gib") or _catalog_weights_gib(args["model"], args.get("quantization"))
    return {
        "replicas": args.get("replicas", 2),
        "tp": tp,
        "max_model_len": args.get("max_model_len", 8192),
        "gpu_memory_utilization": args.get("gpu_memory_utilization", 0.92),
        "max_num_seqs": args.get("max_num_seqs", 64),
        "enable_prefix_caching": args.get("enable_prefix_caching", True),
        "dtype": args.get("dtype", "auto"),
        "quantization": args.get("quantization"),
        "served_model_name": args.get("served_model_name") or args["model"],
        "cpu": args.get("cpu_per_gpu", 8.0) * tp,
        "memory_gib": args.get("memory_gib_per_gpu", 96) * tp,
        "shm_gib": resources.shm_size_gib(tp),
        "cache_size_gib": resources.model_cache_gib(weights),
        "startup_seconds": args.get("startup_seconds") or resources.startup_budget_seconds(weights),
        "model_slug": podspec.dns_label(args["model"].split("/")[-1], 40),
    }


def _catalog_weights_gib(model_id: str, quantization: Optional[str]) -> float:
    model = catalog.MODELS.get(model_id)
    if model is None:
        return 100.0  # unknown size: plan for a large model
    return sizing.weights_gib(model, sizing.ServingShape(1, 1, 1, 0.9, quantization=quantization))


def warn_if_gated_without_token(args: ServingArgs, token_secret: Optional[str], from_store: bool = False) -> None:
    """A gated Hugging Face model without a token crash-loops on 401; say so at plan time."""
    model = catalog.MODELS.get(args["model"])
    if model is not None and model.gated and not token_secret and not from_store:
        pulumi.log.warn(f"{args['model']} is gated on Hugging Face but no hf_token_secret is given: the server "
                        "will fail to download it (create a HuggingFaceToken and pass its secret_name)")


def node_selector(labels: dict[str, str]) -> dict[str, str]:
    """Select the pool by its GPU and pool labels (taken from the pool's outputs)."""
    return {GPU_PRESENT_LABEL: labels[GPU_PRESENT_LABEL], POOL_LABEL: labels[POOL_LABEL]}


def hf_token_mount(secret_name: Optional[str]) -> tuple[list[dict], list[dict], list[dict]]:
    """The HF token as a file (not an env var): (volumes, mounts, env) adding the secret volume, its
    mount and HF_TOKEN_PATH for huggingface_hub; all empty without a secret."""
    if not secret_name:
        return [], [], []
    return (
        [{"name": "hf-token", "secret": {"secretName": secret_name, "defaultMode": 0o440}}],
        [{"name": "hf-token", "mountPath": HF_TOKEN_DIR, "readOnly": True}],
        [{"name": "HF_TOKEN_PATH", "value": f"{HF_TOKEN_DIR}/HF_TOKEN"}],
    )


class ServingComponent(Component):
    """Base of VllmServer, TritonServer and NimServer: registers the shared Kubernetes objects."""

    deployment_name: pulumi.Output[str]
    """Name of the Deployment."""
    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service."""
    endpoint: pulumi.Output[str]
    """In-cluster base URL, http://<service>.<namespace>.svc.cluster.local:8000."""
    gpus_per_replica: pulumi.Output[int]
    """GPUs each replica requests."""

    def _register(self, name: str, args: ServingArgs, build: Callable[..., podspec.ServingWorkload],
                  extra_inputs: tuple = (), extra_outputs: Optional[dict[str, pulumi.Output]] = None,
                  depends_on: Optional[list[pulumi.Resource]] = None) -> None:
        """Build the workload from the pool's labels and tolerations (and any `extra_inputs`, all
        Outputs, passed to `build` in order) and register the shared objects."""
        child = self.child_opts()
        workload = pulumi.Output.all(args["node_labels"], args["tolerations"], *extra_inputs).apply(
            lambda a: build(*a))
        service_name = args.get("service_name", "llm")
        sa_annotations = pulumi.Output.from_input(args.get("service_account_annotations") or {})

        def manifest(fn: Callable[..., Optional[dict]], *extra: Any) -> pulumi.Output[Optional[dict]]:
            return pulumi.Output.all(workload, *extra).apply(lambda a: fn(a[0], *a[1:]))

        sa = manifest(podspec.service_account, sa_annotations)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=sa.apply(lambda m: m["metadata"]),
            automount_service_account_token=False, opts=child)
        dep = manifest(podspec.deployment)
        resolved = defaults(args)
        minutes = podspec.rollout_timeout_minutes(resolved["replicas"], resolved["startup_seconds"])
        timeouts = pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep.apply(lambda m: m["metadata"]), spec=dep.apply(lambda m: m["spec"]),
            opts=self.child_opts(depends_on=[service_account, *(depends_on or [])],
                                        custom_timeouts=timeouts))
        svc = manifest(podspec.service, service_name)
        k8s.core.v1.Service(f"{name}-service", metadata=svc.apply(lambda m: m["metadata"]),
                            spec=svc.apply(lambda m: m["spec"]), opts=child)
        if args.get("replicas", 2) >= 2:
            pdb = manifest(podspec.pod_disruption_budget)
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=pdb.apply(lambda m: m["metadata"]),
                                              spec=pdb.apply(lambda m: m["spec"]), opts=child)
        netpol = manifest(podspec.network_policy, list(args.get("allowed_namespaces") or []))
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", metadata=netpol.apply(lambda m: m["metadata"]),
                                        spec=netpol.apply(lambda m: m["spec"]), opts=child)

        self.deployment_name = workload.apply(lambda w: w.name)
        self.service_name = pulumi.Output.from_input(service_name)
        self.endpoint = workload.apply(
            lambda w: f"http://{service_name}.{w.namespace}.svc.cluster.local:{podspec.SERVING_PORT}")
        self.gpus_per_replica = workload.apply(lambda w: w.gpus)
        self.ready = deployment.id
        self.register_outputs({"deployment_name": self.deployment_name, "service_name": self.service_name,
                               "endpoint": self.endpoint, "gpus_per_replica": self.gpus_per_replica,
                               **(extra_outputs or {})})
