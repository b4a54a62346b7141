"""BenchmarkJob: the ServiceAccount, ConfigMap (the run's metadata) and Job that measure the
environment's own Service with the pinned load generator and upload the tool's result files."""

from typing import Any, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from ..aws.benchmark_access import BenchmarkWriteAccess
from ..base import Component
from ..config.benchmark import SERVICE_ACCOUNT, BenchmarkPlan, benchmark_metadata, benchmark_plan, tool_version
from . import benchmark_spec


class BenchmarkJobArgs(TypedDict):
    plan: BenchmarkPlan
    """What to run (config.benchmark.benchmark_plan: endpoint, sweep, images, results prefix)."""
    metadata: dict[str, Any]
    """The run's metadata file (config.benchmark.benchmark_metadata), written beside the results."""
    bucket_name: pulumi.Input[str]
    """Model-store bucket the results are uploaded to."""
    region: str
    """Region of the bucket."""
    service_account_annotations: NotRequired[pulumi.Input[dict[str, str]]]
    """Annotations for the ServiceAccount (the IRSA role ARN; {} for Pod Identity). Default {}."""
    hf_token_secret: NotRequired[str]
    """Secret (key HF_TOKEN) for a gated tokenizer, mounted as a file. Default unset."""
    run_after: NotRequired[list[pulumi.Resource]]
    """Resources the Job waits for (the serving stack, the role and its association). Default []."""


class BenchmarkJob(Component):
    """One pod: an init container per sweep point (`aiperf profile`), then an upload container; a
    NetworkPolicy denies the pod all ingress. The Job is not awaited by `pulumi up`
    (pulumi.com/skipAwait); results land under the prefix below."""

    job_name: pulumi.Output[str]
    """Name of the Job (benchmark-<runId>)."""
    results_uri: pulumi.Output[str]
    """s3://<bucket>/benchmarks/<stack>/ — each run adds a <UTC timestamp>/ folder."""

    def __init__(self, name: str, args: BenchmarkJobArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Internal (built by ServingPlatform from a validated config, not exported): its plan is a
        # dataclass the argument checker does not take, so args are not re-checked here.
        super().__init__("servingstack:index:BenchmarkJob", name, opts)
        plan = args["plan"]
        child = self.child_opts()
        sa = pulumi.Output.from_input(args.get("service_account_annotations") or {}).apply(
            lambda a: benchmark_spec.service_account(plan, a))
        account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa.apply(lambda m: m["metadata"]),
                                             automount_service_account_token=False, opts=child)
        cm = benchmark_spec.config_map(plan, args["metadata"])
        # Named like the Job; a changed ConfigMap is replaced (its data is immutable to the provider),
        # deleted first since the name is fixed. It never re-runs the Job: only runId or the Job's own
        # settings do.
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=cm["metadata"], data=cm["data"],
                                       opts=self.child_opts(delete_before_replace=True))
        np = benchmark_spec.network_policy(plan)
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", metadata=np["metadata"], spec=np["spec"], opts=child)
        manifest = pulumi.Output.from_input(args["bucket_name"]).apply(
            lambda b: benchmark_spec.job(plan, b, args["region"], args.get("hf_token_secret")))
        # Its name is fixed (benchmark-<runId>) and a Job's template is immutable: a changed Job is
        # deleted before its replacement is created.
        k8s.batch.v1.Job(f"{name}-job", metadata=manifest.apply(lambda m: m["metadata"]),
                         spec=manifest.apply(lambda m: m["spec"]),
                         opts=self.child_opts(depends_on=[account, config, *(args.get("run_after") or [])],
                                              delete_before_replace=True))
        self.job_name = pulumi.Output.from_input(plan.job_name)
        self.results_uri = pulumi.Output.from_input(args["bucket_name"]).apply(
            lambda b: f"s3://{b}/{plan.results_prefix}")
        self.register_outputs({"job_name": self.job_name, "results_uri": self.results_uri})


def add_benchmark(cfg: Any, stack: str, cluster: Any, store: Any, server: Component, hf_token: bool,
                  tags: dict[str, str], opts: pulumi.ResourceOptions,
                  k8s_opts: pulumi.ResourceOptions) -> pulumi.Output[dict[str, Any]]:
    """servingstack:benchmark for ServingPlatform: the Job's write-only role (`opts`) and the Job
    (`k8s_opts`: the cluster's Kubernetes provider), run once the server is ready; returns the
    `benchmark` output. `cfg` is the validated StackConfig, `cluster` the EksCluster, `store` the ModelStore."""
    plan = benchmark_plan(cfg, stack)
    access = BenchmarkWriteAccess("benchmark-write", {
        "cluster_name": cluster.cluster_name, "namespace": plan.namespace, "service_account": SERVICE_ACCOUNT,
        "bucket_arn": store.bucket_arn, "kms_key_arn": store.kms_key_arn, "results_prefix": plan.results_prefix,
        "region": cfg.region, "use_pod_identity": cfg.cluster.pod_identity,
        "oidc_provider_arn": cluster.oidc_provider_arn, "oidc_issuer_url": cluster.oidc_issuer_url, "tags": tags,
    }, opts=opts)
    job = BenchmarkJob("benchmark", {
        "plan": plan, "metadata": benchmark_metadata(cfg, plan), "bucket_name": store.bucket_name,
        "region": cfg.region, "service_account_annotations": access.service_account_annotations,
        **({"hf_token_secret": "hf-token"} if hf_token else {}),
        # Credentials exist before the pod is admitted; the server's Deployment is ready first.
        "run_after": [server, access],
    }, opts=k8s_opts)
    return pulumi.Output.all(job.job_name, job.results_uri).apply(lambda a: {
        "jobName": a[0], "namespace": plan.namespace, "runId": plan.run_id, "resultsUri": a[1],
        "tool": f"aiperf {tool_version(plan.image) or plan.image}",
        "sweep": [p.concurrency for p in plan.points],
        "report": f"aws s3 sync {a[1]} ./benchmarks/{plan.stack}/ && servingstack bench report "
                  f"./benchmarks/{plan.stack}/<timestamp>",
    })
