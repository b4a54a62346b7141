"""Pure: what serving pods ask of their nodes, how many nodes they occupy, and how long they may
take to start. No Pulumi import."""

from __future__ import annotations

import math

from .catalog import GpuInstanceType


def serving_nodes(replicas: int, gpus_per_replica: int, gpus_per_node: int, hard_spread: bool,
                  desired_size: int = 0) -> int:
    """GPU nodes the serving pods occupy: packed when the spread is soft, one replica per node when
    hard, never fewer than the pool's desired size."""
    if gpus_per_replica > gpus_per_node:
        raise ValueError("a replica cannot span nodes")
    if hard_spread:
        needed = replicas
    else:
        needed = math.ceil(replicas / (gpus_per_node // gpus_per_replica))
    return max(needed, desired_size)


def spare_replica_slots(replicas: int, gpus_per_replica: int, gpus_per_node: int, nodes: int,
                        hard_spread: bool) -> int:
    """Extra replicas the pool could place beside the running ones: with soft spread, every node
    holds gpus_per_node // gpus_per_replica replicas; with hard spread (one replica per node) only a
    node without one can take another. Used to surge a rolling update only where a slot exists."""
    if replicas <= 0 or gpus_per_replica > gpus_per_node:
        return 0
    if hard_spread:
        return max(0, nodes - replicas)
    return max(0, nodes * (gpus_per_node // gpus_per_replica) - replicas)


def second_set_fits(replicas: int, gpus_per_replica: int, gpus_per_node: int, nodes: int, hard_spread: bool) -> bool:
    """Whether a second Deployment of `replicas` (a stack switch or another replacement: new pod
    labels, so the old pods do not repel it) fits beside the running one."""
    if replicas <= 0:
        return True
    if gpus_per_replica > gpus_per_node:
        return False
    if hard_spread:  # one new replica per node, on nodes with room beside an old one or on empty ones
        free_nodes = (nodes - replicas) + (replicas if gpus_per_node - gpus_per_replica >= gpus_per_replica else 0)
        return free_nodes >= replicas
    return nodes * (gpus_per_node // gpus_per_replica) >= 2 * replicas


# ---- drain -----------------------------------------------------------------------------------

#: Output tokens of the longest stream a draining pod waits for (capped by maxModelLen).
DRAIN_STREAM_TOKENS = 2048
#: Per-stream decode rate planned for that wait: Llama 3.1 70B bf16 on 2x A100 decodes at a
#: realistic 46-62 ms per token under load (performance-facts.md, ITL rows), ~16 tokens/s.
DRAIN_TOKENS_PER_SECOND = 16
#: Time for the endpoint removal to reach every kube-proxy before in-flight work is counted.
ENDPOINT_PROPAGATION_SECONDS = 5
#: After the drain: the engine's own shutdown (SIGTERM to exit).
SHUTDOWN_SECONDS = 30


def drain_seconds(max_model_len: int) -> int:
    """preStop delay of a serving pod: removed from the Service at once, it keeps running long
    enough for the longest planned in-flight stream to finish before it gets SIGTERM."""
    return ENDPOINT_PROPAGATION_SECONDS + math.ceil(min(max_model_len, DRAIN_STREAM_TOKENS) / DRAIN_TOKENS_PER_SECOND)


# ---- probe budget ----------------------------------------------------------------------------

#: Reference operators' start-up budgets for a 70B model: vLLM production-stack ~600 s, NVIDIA's
#: NIM chart 40 s + 10 s x 180 = 1,840 s. Never give a large model less than that.
MIN_STARTUP_SECONDS = 600
MIN_STARTUP_SECONDS_LARGE = 1840
LARGE_MODEL_WEIGHTS_GIB = 100.0
#: Slowest weight path we plan for (Hugging Face download or S3 into a fresh node), GiB/s.
PLANNED_LOAD_GIB_PER_SECOND = 0.2
ENGINE_INIT_SECONDS = 300


def startup_budget_seconds(weights_gib: float) -> int:
    """Seconds a pod may take to become ready: weights at the planned throughput plus engine
    initialisation (CUDA graphs, torch.compile), floored at the reference operators' budgets."""
    floor = MIN_STARTUP_SECONDS_LARGE if weights_gib >= LARGE_MODEL_WEIGHTS_GIB else MIN_STARTUP_SECONDS
    return max(floor, int(math.ceil(weights_gib / PLANNED_LOAD_GIB_PER_SECOND)) + ENGINE_INIT_SECONDS)


#: Fastest weight path planned for: 5 GB/s (local NVMe or the Run:ai streamer from S3 on a large
#: instance; performance-facts.md: "141 GB of weights takes 28-113 s at 5-1.25 GB/s"), in GiB/s.
FASTEST_LOAD_GIB_PER_SECOND = 5e9 / 2**30
#: The least engine start-up after the weights are in (CUDA context, memory profiling, KV allocation).
MIN_ENGINE_INIT_SECONDS = 60


def startup_floor_seconds(weights_gib: float) -> int:
    """The shortest start-up budget that can work: the weights at the fastest path planned for plus
    the least engine initialisation. A shorter startup probe kills every pod before it is ready."""
    return int(math.ceil(weights_gib / FASTEST_LOAD_GIB_PER_SECOND)) + MIN_ENGINE_INIT_SECONDS


def shm_size_gib(tensor_parallel_size: int) -> int:
    """/dev/shm for NCCL and PyTorch IPC between tensor-parallel workers: 2 GiB for one GPU, else
    4 GiB per worker (production-stack uses 20 GiB for TP 8; vLLM's docs 2 GiB for TP 1)."""
    return 2 if tensor_parallel_size == 1 else 4 * tensor_parallel_size


# ---- what one serving pod asks of its node ---------------------------------------------------

#: Host resources kept for the kubelet, system daemons and DaemonSets (device plugin, CNI, agents).
NODE_RESERVED_CPU = 1.0
NODE_ALLOCATABLE_MEMORY_FRACTION = 0.9
NODE_RESERVED_MEMORY_GIB = 1.0
#: Root/data volume space taken by the OS, container images (vLLM/Triton/NIM images are 10-20 GB) and logs.
DISK_RESERVED_GIB = 40
EPHEMERAL_HEADROOM_GIB = 10


def model_cache_gib(weights_gib: float) -> int:
    """Model cache volume: the weights plus 15% (tokenizer, config, compiled kernels) plus 20 GiB."""
    return int(math.ceil(weights_gib * 1.15)) + 20


def pod_ephemeral_gib(weights_gib: float) -> int:
    """Ephemeral storage one serving pod requests: its model cache plus logs and scratch."""
    return model_cache_gib(weights_gib) + EPHEMERAL_HEADROOM_GIB


def allocatable_cpu(instance: GpuInstanceType) -> float:
    return instance.vcpus - NODE_RESERVED_CPU


def allocatable_memory_gib(instance: GpuInstanceType) -> float:
    return instance.memory_mib / 1024 * NODE_ALLOCATABLE_MEMORY_FRACTION - NODE_RESERVED_MEMORY_GIB


def default_cpu_per_gpu(instance: GpuInstanceType) -> float:
    """8 cores per GPU where the instance has them (tokenization and HTTP), else its share."""
    return float(min(8, max(1, int(allocatable_cpu(instance) // instance.gpus))))


def default_memory_gib_per_gpu(instance: GpuInstanceType, tensor_parallel_size: int) -> int:
    """96 GiB per GPU where the instance has it, else its share after /dev/shm."""
    share = allocatable_memory_gib(instance) / instance.gpus - shm_size_gib(tensor_parallel_size) / tensor_parallel_size
    return int(min(96, max(1, int(share))))


def pods_per_node(replicas: int, gpus_per_replica: int, gpus_per_node: int, hard_spread: bool) -> int:
    """Serving pods that can share one node."""
    if hard_spread or replicas <= 1:
        return 1
    return max(1, min(replicas, gpus_per_node // gpus_per_replica))
