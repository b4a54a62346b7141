"""A program composing N serving deployments from the components, each on its own GPU node pool, on
one adopted EKS cluster with one device plugin: what a platform team serving many models writes.
benchmarks/construct.py times it for N = 1, 10 and 50 to show how construction cost grows."""

from typing import Any, Callable

import pulumi
import pulumi_kubernetes as k8s

from servingstack import EksCluster, GpuNodePool, NvidiaDevicePlugin, VllmServer
from servingstack.program import tune_gc

MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct")


def fleet_program(n: int) -> Callable[[], dict[str, Any]]:
    """The program function for `n` deployments (run it with servingstack.tools.synth.run_program)."""

    def main() -> dict[str, Any]:
        tune_gc()  # as components/program.py does (see tune_gc), so comparisons stay like for like
        cluster = EksCluster("cluster", {"cluster_name": "fleet", "region": "us-east-1", "create": False})
        on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
        pools = [GpuNodePool(f"pool-{i}", {
            "cluster_name": cluster.cluster_name, "subnet_ids": cluster.subnet_ids, "pool_name": f"gpu-{i}",
            "instance_type": "g6e.48xlarge" if i % 3 else "g6e.xlarge", "min_size": 0, "max_size": 2,
            "desired_size": 1, "tags": {"team": f"team-{i}"},
        }) for i in range(n)]
        plugin = NvidiaDevicePlugin("device-plugin", {"pool_names": [f"gpu-{i}" for i in range(n)]}, opts=on_cluster)
        outputs: dict[str, Any] = {}
        for i, pool in enumerate(pools):
            ns = f"team-{i}"
            namespace = k8s.core.v1.Namespace(f"ns-{i}", metadata={"name": ns}, opts=on_cluster)
            server = VllmServer(f"model-{i}", {
                "namespace": ns, "model": MODELS[i % len(MODELS)], "node_labels": pool.labels,
                "tolerations": pool.tolerations, "replicas": 1, "tensor_parallel_size": 1 if i % 3 == 0 else 4,
                "max_model_len": 8192,
                # Each team's HF token Secret is synced by its own tooling (External Secrets, ...).
                "hf_token_secret": "hf-token",
            }, opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(
                depends_on=[namespace, plugin, pool])))
            outputs[f"endpoint{i}"] = server.endpoint
        return outputs

    return main
