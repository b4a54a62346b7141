"""Add GPU serving to an EKS cluster you already run: adopt the cluster by name, add a GPU node pool,
install the NVIDIA device plugin on it, and serve one model with vLLM.

    pulumi config set clusterName my-cluster
    pulumi config set aws:region us-west-2
    pulumi config set --secret hfToken hf_...      # optional: gated Hugging Face models
    pulumi up

The pod's CPU and memory are sized for the default g6e.xlarge (1 L40S, 4 vCPU, 32 GiB). With
another instanceType, size them to one GPU's share of that instance (minus the node's daemons):
`pulumi config set cpuPerGpu <cores>` and `pulumi config set memoryGibPerGpu <GiB>`, and set
`tensorParallelSize` to the GPUs one replica needs. The components check all of it against the
instance type when the program runs (`servingstack synth --program .` checks it offline).

`main()` builds everything and returns the stack outputs; the tests run it under the mock runtime.
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from servingstack import (
    MODELS,
    EksCluster,
    GpuNodePool,
    HuggingFaceToken,
    NvidiaDevicePlugin,
    VllmServer,
    VllmServerArgs,
)

NAMESPACE = "llm"
POOL = "l40s"
# Per GPU, for g6e.xlarge (4 vCPU, 32 GiB): the components' defaults (8 cores and 96 GiB per GPU)
# suit p4d/p5-class instances and would never schedule here. 24 GiB + 2 GiB /dev/shm and 3 cores
# leave room for the kubelet, system daemons and DaemonSets.
CPU_PER_GPU = 3
MEMORY_GIB_PER_GPU = 24


def main() -> dict[str, Any]:
    config = pulumi.Config()
    region = pulumi.Config("aws").get("region") or "us-east-1"

    # Adopt: reads the cluster (endpoint, CA, OIDC issuer, subnets); creates no AWS resource.
    cluster = EksCluster("cluster", {"cluster_name": config.require("clusterName"), "region": region,
                                     "create": False})
    # Kubernetes resources go to this cluster only, through the provider built from its kubeconfig.
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})

    instance_type = config.get("instanceType") or "g6e.xlarge"
    pool = GpuNodePool("gpu-pool", {
        "cluster_name": cluster.cluster_name, "subnet_ids": cluster.subnet_ids, "pool_name": POOL,
        "instance_type": instance_type,
        "min_size": 0, "max_size": 2, "desired_size": 2,
        "tags": {"team": "ml-platform"},
    })
    plugin = NvidiaDevicePlugin("device-plugin", {"pool_names": [POOL]}, opts=on_cluster)
    namespace = k8s.core.v1.Namespace("llm", metadata={"name": NAMESPACE, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}, opts=on_cluster)

    args: VllmServerArgs = {
        "namespace": NAMESPACE, "model": config.get("model") or "meta-llama/Llama-3.1-8B-Instruct",
        "node_labels": pool.labels, "tolerations": pool.tolerations, "local_nvme": pool.local_nvme,
        # The pool's instance type: the model-fit, tensor-parallel and pod-size checks run against it.
        "instance_type": instance_type,
        "replicas": 2, "tensor_parallel_size": config.get_int("tensorParallelSize") or 1, "max_model_len": 16384,
        "cpu_per_gpu": config.get_float("cpuPerGpu") or CPU_PER_GPU,
        "memory_gib_per_gpu": config.get_int("memoryGibPerGpu") or MEMORY_GIB_PER_GPU,
    }
    depends_on: list[pulumi.Resource] = [namespace, plugin, pool]
    # Gated models (Llama, Mistral) download only with a token: require it rather than crash-loop.
    model = MODELS.get(args["model"])
    hf_token = config.require_secret("hfToken") if model is None or model.gated else config.get_secret("hfToken")
    if hf_token is not None:
        token = HuggingFaceToken("hf-token", {"namespace": NAMESPACE, "token": hf_token},
                                 opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(
                                     depends_on=[namespace])))
        args["hf_token_secret"] = "hf-token"
        depends_on.append(token)
    server = VllmServer("vllm", args, opts=pulumi.ResourceOptions.merge(
        on_cluster, pulumi.ResourceOptions(depends_on=depends_on)))

    return {
        "endpoint": server.endpoint,
        "openaiBaseUrl": server.endpoint.apply(lambda e: f"{e}/v1"),
        "nodeGroup": pool.node_group_name,
        "devicePlugin": plugin.status,
    }


if __name__ == "__main__":  # `pulumi up` runs this file as __main__; tests import it and call main()
    for key, value in main().items():
        pulumi.export(key, value)
