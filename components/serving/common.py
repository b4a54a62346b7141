"""What vLLM, Triton and NIM components share: their common arguments and the registration of the
ServiceAccount, Deployment, Service, PodDisruptionBudget and NetworkPolicy built by k8s/podspec.py."""

import dataclasses
from typing import Any, Callable, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from ..config.errors import RuleError
from ..planning import catalog, resources, sizing
from ..planning.node import GPU_PRESENT_LABEL, GPU_TAINT_EFFECT_K8S, GPU_TAINT_KEY, GPU_TAINT_VALUE, POOL_LABEL
from ..k8s import podspec
from ..base import Component, KubernetesArgs

HF_TOKEN_DIR = "/var/run/secrets/huggingface"
#: Default tolerations: the servingstack GPU pools' taint (nvidia.com/gpu=present:NoSchedule).
GPU_TOLERATIONS = [{"key": GPU_TAINT_KEY, "operator": "Equal", "value": GPU_TAINT_VALUE,
                    "effect": GPU_TAINT_EFFECT_K8S}]
#: The three serving component types. Each aliases the other two (same name, same parent), so a
#: stack switch keeps the URNs of every child that keeps its name (the Service, the ServiceAccount).
SERVING_TYPES = ("servingstack:index:VllmServer", "servingstack:index:TritonServer", "servingstack:index:NimServer")
#: pulumi-kubernetes waits for a Service's endpoints for 10 minutes by default; the Service is
#: created after its Deployment is ready instead (see ServingComponent._register).
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


class ServingArgs(KubernetesArgs):
    namespace: str
    """Namespace to deploy into (must exist)."""
    model: str
    """Hugging Face model id, e.g. "meta-llama/Llama-3.1-70B-Instruct"."""
    node_labels: NotRequired[pulumi.Input[dict[str, str]]]
    """Labels of the GpuNodePool to run on (its `labels` output): the pods select its GPU and pool
    labels (`nvidia.com/gpu.present`, `servingstack.io/pool`), or all the labels given when those two
    are absent. Give this or `node_selector`. Default unset."""
    node_selector: NotRequired[pulumi.Input[dict[str, str]]]
    """The pods' nodeSelector, used as given: any node labels (a node group of your own), or {} for
    any node with free GPUs. Give this or `node_labels`. Default unset."""
    tolerations: NotRequired[pulumi.Input[list[dict[str, str]]]]
    """The pods' tolerations (a GpuNodePool's `tolerations` output, or your own nodes' taints).
    Default: tolerate the servingstack GPU taint nvidia.com/gpu=present:NoSchedule."""
    instance_type: NotRequired[str]
    """EC2 instance type of the nodes the pods run on (a catalogued GPU type, e.g. "g6e.xlarge"):
    the model-fit, tensor-parallel and pod-size checks then run against it at construction, and the
    CPU and memory defaults become that instance's share per GPU. Default unset: only the checks
    that need no hardware (attention heads, context length, quantization) run."""
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
    """CPU cores requested (and limited) per GPU. Default 8, or the `instance_type`'s share when smaller."""
    memory_gib_per_gpu: NotRequired[int]
    """Memory GiB requested (and limited) per GPU, before /dev/shm. Default 96, or the `instance_type`'s
    share when smaller."""
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
    monitoring_namespace: NotRequired[str]
    """Namespace of the Prometheus that scrapes the pods: the NetworkPolicy admits it on the metrics
    port only. Default unset (no scraper admitted)."""
    replicas_autoscaled: NotRequired[bool]
    """An autoscaler (KEDA) owns the replica count: `replicas` is only the count at creation and the
    Deployment ignores later changes to spec.replicas. Default false."""
    spare_replica_slots: NotRequired[int]
    """Replicas of this Deployment the pool could place beside the running ones
    (planning.resources.spare_replica_slots; ServingPlatform computes it from the pool). >= 1:
    rolling updates surge one pod (maxSurge 1, maxUnavailable 0); 0: one replica at a time goes
    down (maxSurge 0, maxUnavailable 1). Default 0."""
    parallel_replacement: NotRequired[bool]
    """Whether a replaced Deployment (new name: stack switch, model change) can start beside the
    old one (planning.resources.second_set_fits); false deletes the old one first. Default false."""
    drain_seconds: NotRequired[int]
    """preStop delay before SIGTERM so in-flight streams finish; the grace period adds 30 s.
    Default: planning.resources.drain_seconds(max_model_len)."""
    switch_aliases: NotRequired[bool]
    """Alias this server to a VllmServer/TritonServer/NimServer of the same name and parent, so a
    stack switch updates the shared Service and ServiceAccount in place. Turn off only to run two
    kinds of server with the same name side by side. Default true."""


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
        "cpu": args.get("cpu_per_gpu", _default_cpu_per_gpu(args)) * tp,
        "memory_gib": args.get("memory_gib_per_gpu", _default_memory_gib_per_gpu(args, tp)) * tp,
        "shm_gib": resources.shm_size_gib(tp),
        "cache_size_gib": resources.model_cache_gib(weights),
        "startup_seconds": args.get("startup_seconds") or resources.startup_budget_seconds(weights),
        "drain_seconds": args.get("drain_seconds") or resources.drain_seconds(args.get("max_model_len", 8192)),
        "max_surge": 1 if args.get("spare_replica_slots", 0) >= 1 else 0,
        "model_slug": podspec.dns_label(args["model"].split("/")[-1], 40),
    }


def _instance(args: ServingArgs) -> Optional[catalog.GpuInstanceType]:
    name = args.get("instance_type")
    return catalog.INSTANCE_TYPES.get(name) if name else None


def _default_cpu_per_gpu(args: ServingArgs) -> float:
    instance = _instance(args)
    return resources.default_cpu_per_gpu(instance) if instance else 8.0


def _default_memory_gib_per_gpu(args: ServingArgs, tp: int) -> int:
    instance = _instance(args)
    return resources.default_memory_gib_per_gpu(instance, tp) if instance else 96


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


def pool_selector(labels: Mapping[str, str]) -> dict[str, str]:
    """The nodeSelector for a pool's labels (`node_labels`): its GPU and pool labels when it is a
    servingstack GpuNodePool, else every label given."""
    if GPU_PRESENT_LABEL in labels and POOL_LABEL in labels:
        return {GPU_PRESENT_LABEL: labels[GPU_PRESENT_LABEL], POOL_LABEL: labels[POOL_LABEL]}
    return dict(labels)


def node_selector(selector: Mapping[str, str]) -> dict[str, str]:
    """The pods' nodeSelector: what `ServingComponent._register` resolved from `node_selector` or
    `node_labels` and hands the workload builders."""
    return dict(selector)


def selector_input(args: ServingArgs) -> pulumi.Output[dict[str, str]]:
    """`node_selector` as given, or the selector of the pool `node_labels` names."""
    if "node_selector" in args:
        return pulumi.Output.from_input(args["node_selector"]).apply(dict)
    return pulumi.Output.from_input(args["node_labels"]).apply(pool_selector)


def check_serving_args(args: Mapping[str, Any]) -> None:
    """Rules across the common arguments: one node selection, a known model (or its size), and the
    planning core's fit checks (sizing.check_fit against `instance_type` when given; without it the
    checks that need no hardware)."""
    if ("node_selector" in args) == ("node_labels" in args):
        raise RuleError("node_selector", (
            "and node_labels are both given — pass one" if "node_selector" in args else
            "is required (or node_labels) — pass a GpuNodePool's `labels` as node_labels, your own nodes' "
            "labels as node_selector, or node_selector {} for any node with free GPUs"))
    model = catalog.MODELS.get(args["model"])
    if model is None:
        if "weights_gib" not in args:
            raise RuleError("model", f"{args['model']!r} is not in the model catalog — use one of "
                                     f"{', '.join(catalog.MODELS)}, or pass weights_gib (the checkpoint's size) "
                                     "to serve a model outside it")
        return
    d = defaults(args)  # type: ignore[arg-type]
    shape = sizing.ServingShape(d["replicas"], d["tp"], d["max_model_len"], d["gpu_memory_utilization"], d["dtype"],
                                d["quantization"], args.get("kv_cache_dtype", "auto"))
    instance = _instance(args)  # type: ignore[arg-type]
    if instance is None:
        # The hardware-independent rules: TP against the heads (any 8-GPU node), checkpoint, context.
        sizing.check_parallelism(model, max(catalog.INSTANCE_TYPES.values(), key=lambda i: i.gpus), shape)
        sizing.check_quantization(model, shape)
        sizing.check_context(model, shape)
        return
    sizing.check_fit(model, instance, shape)
    _check_pod_fits_node(instance, d, bool(args.get("hard_spread", False)))


def _check_pod_fits_node(instance: catalog.GpuInstanceType, d: dict[str, Any], hard_spread: bool) -> None:
    """The pods that share a node fit its allocatable CPU and memory (the stack config's node-fit
    formulas, planning/resources.py)."""
    tp = d["tp"]
    per_node = resources.pods_per_node(d["replicas"], tp, instance.gpus, hard_spread)
    cpu_limit = resources.allocatable_cpu(instance)
    if per_node * d["cpu"] > cpu_limit:
        raise RuleError("cpu_per_gpu", (
            f"{d['cpu'] / tp:g} — {per_node} pod(s) x {tp} GPUs x {d['cpu'] / tp:g} cores exceed the "
            f"~{cpu_limit:g} allocatable cores of {instance.name} — use cpu_per_gpu <= "
            f"{int(cpu_limit // (per_node * tp))}"))
    memory_limit = resources.allocatable_memory_gib(instance)
    if per_node * (d["memory_gib"] + d["shm_gib"]) > memory_limit:
        fits = int((memory_limit / per_node - d["shm_gib"]) // tp)
        raise RuleError("memory_gib_per_gpu", (
            f"{d['memory_gib'] // tp} — {per_node} pod(s) x ({tp} GPUs x {d['memory_gib'] // tp} GiB + "
            f"{d['shm_gib']} GiB /dev/shm) exceed the ~{memory_limit:.0f} GiB allocatable memory of "
            f"{instance.name} — use memory_gib_per_gpu <= {max(fits, 0)}"))


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


def switch_opts(type_name: str, name: str, opts: Optional[pulumi.ResourceOptions],
                enabled: bool = True) -> Optional[pulumi.ResourceOptions]:
    """`opts` plus aliases to the other two serving types under the same name and parent: the engine
    then finds the previous stack's children (inherited child aliases) and updates objects that keep
    their Kubernetes name instead of creating one and deleting the other (pulumi-kubernetes#2948)."""
    if not enabled:
        return opts
    aliases = [pulumi.Alias(type_=t) for t in SERVING_TYPES if t != type_name]
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))


class ServingComponent(Component):
    """Base of VllmServer, TritonServer and NimServer: registers the shared Kubernetes objects."""

    def __init__(self, type_name: str, name: str, opts: Optional[pulumi.ResourceOptions] = None,
                 args: Optional[Any] = None):
        enabled = args.get("switch_aliases", True) if isinstance(args, dict) else True
        super().__init__(type_name, name, switch_opts(type_name, name, opts, enabled), args)

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        check_serving_args(args)

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
        """Build the workload from the node selector and tolerations (and any `extra_inputs`, all
        Outputs, passed to `build` in order) and register the shared objects."""
        child = self.child_opts()
        tolerations = args.get("tolerations", GPU_TOLERATIONS)
        resolved = defaults(args)
        workload = pulumi.Output.all(selector_input(args), tolerations, *extra_inputs).apply(
            lambda a: dataclasses.replace(build(*a), max_surge=resolved["max_surge"],
                                          drain_seconds=resolved["drain_seconds"]))
        service_name = args.get("service_name", "llm")
        sa_annotations = pulumi.Output.from_input(args.get("service_account_annotations") or {})

        def manifest(fn: Callable[..., Optional[dict]], *extra: Any) -> pulumi.Output[Optional[dict]]:
            return pulumi.Output.all(workload, *extra).apply(lambda a: fn(a[0], *a[1:]))

        sa = manifest(podspec.service_account, sa_annotations)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=sa.apply(lambda m: m["metadata"]),
            automount_service_account_token=False, opts=child)
        dep = manifest(podspec.deployment)
        minutes = podspec.rollout_timeout_minutes(resolved["replicas"], resolved["startup_seconds"],
                                                  resolved["drain_seconds"])
        timeouts = pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")
        # A replaced Deployment (new name: stack switch, model change) starts beside the old one only
        # where the pool holds a second set of replicas; otherwise the old one goes first.
        room = args.get("parallel_replacement", False)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep.apply(lambda m: m["metadata"]), spec=dep.apply(lambda m: m["spec"]),
            opts=self.child_opts(depends_on=[service_account, *(depends_on or [])],
                                 custom_timeouts=timeouts, delete_before_replace=not room,
                                 ignore_changes=["spec.replicas"] if args.get("replicas_autoscaled") else None))
        svc = manifest(podspec.service, service_name)
        # After the Deployment is ready: a stack switch moves the selector to pods that serve, and
        # the Service's own endpoint wait (10 minutes by default) is not needed.
        k8s.core.v1.Service(f"{name}-service", metadata=svc.apply(
            lambda m: {**m["metadata"], "annotations": {SKIP_AWAIT_ANNOTATION: "true"}}),
            spec=svc.apply(lambda m: m["spec"]), opts=self.child_opts(depends_on=[deployment]))
        if args.get("replicas", 2) >= 2:
            pdb = manifest(podspec.pod_disruption_budget)
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=pdb.apply(lambda m: m["metadata"]),
                                              spec=pdb.apply(lambda m: m["spec"]), opts=child)
        netpol = manifest(podspec.network_policy, list(args.get("allowed_namespaces") or []),
                          args.get("monitoring_namespace"))
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
