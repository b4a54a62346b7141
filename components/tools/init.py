"""`servingstack init NAME --model M [--instance T] [--stack S] [--adopt CLUSTER]`: write a commented
stack file sized for the model.

The sizing is the planning core's: the smallest tensor-parallel size at which `sizing.check_fit`
passes on the instance type (the cheapest catalogued type for the model when none is given), the
replicas of the environment (1 in dev, 2 otherwise), and a pool whose desiredSize holds every
replica (`resources.serving_nodes`; no cluster autoscaler is installed). The file is parsed and
validated like any stack file (`parse_stack_config`, fit and node checks included) before it is
written, so what init writes synthesizes. Values a user must replace are marked `FILL IN` and
listed at the top of the file and on stdout.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config.errors import did_you_mean
from ..planning import catalog
from ..planning.resources import serving_nodes
from ..planning.sizing import FitError, FitReport, ServingShape, check_fit

#: The RFC 5737 documentation range: a valid CIDR that is no runner's address. The placeholder for
#: cluster.publicAccessCidrs, which a new cluster needs (the deploy runner must reach the API).
PLACEHOLDER_CIDR = "203.0.113.0/24"
MAX_MODEL_LEN = 8192
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


class InitError(ValueError):
    """An init request that cannot be met (one line, exit 2)."""


@dataclass(frozen=True)
class Sizing:
    instance: catalog.GpuInstanceType
    tensor_parallel_size: int
    replicas: int
    nodes: int
    fit: FitReport

    @property
    def monthly_usd(self) -> float:
        return self.nodes * self.instance.on_demand_usd_per_hour * catalog.HOURS_PER_MONTH


def add_init_parser(sub: Any) -> None:
    p = sub.add_parser("init", help="write a commented stack file sized for a model (TP, replicas, pool size "
                                    "chosen so that it passes the fit checks)")
    p.add_argument("name", metavar="NAME", help="the deployment's name: the EKS cluster created (unless --adopt) "
                                                "and the stack name (unless --stack)")
    p.add_argument("--model", required=True, help=f"a catalogued model: {', '.join(catalog.MODELS)}")
    p.add_argument("--instance", help="GPU instance type (default: the cheapest catalogued one the model fits)")
    p.add_argument("--stack", help="stack name: writes <stackConfigDir>/Pulumi.STACK.yaml (default NAME)")
    p.add_argument("--adopt", metavar="CLUSTER", help="adopt this existing EKS cluster instead of creating one")
    p.add_argument("--serving", default="vllm", choices=["vllm", "triton", "nim"], help="serving stack (default vllm)")
    p.add_argument("--environment", default="dev", choices=["dev", "staging", "prod"], help="default dev")
    p.add_argument("--region", default="us-east-1", help="AWS region (default us-east-1)")
    p.add_argument("--out", help="write this file instead of <stackConfigDir>/Pulumi.STACK.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def size_for(model: catalog.ModelArchitecture, instance: catalog.GpuInstanceType, replicas: int) -> Optional[Sizing]:
    """The smallest tensor-parallel size that passes check_fit on `instance`, or None."""
    for tp in range(1, instance.gpus + 1):
        try:
            fit = check_fit(model, instance, ServingShape(replicas, tp, min(MAX_MODEL_LEN, model.max_context), 0.92))
        except FitError:
            continue
        return Sizing(instance, tp, replicas, serving_nodes(replicas, tp, instance.gpus, False), fit)
    return None


def choose(model_id: str, instance_name: Optional[str], environment: str) -> Sizing:
    model = catalog.MODELS.get(model_id)
    if model is None:
        raise InitError(f"--model {model_id!r}: not in the model catalog{did_you_mean(model_id, catalog.MODELS)} "
                        f"(catalogued: {', '.join(catalog.MODELS)}; for another model write serving.customModel "
                        "by hand, README config reference)")
    replicas = 1 if environment == "dev" else 2
    if instance_name is not None:
        instance = catalog.INSTANCE_TYPES.get(instance_name)
        if instance is None:
            raise InitError(f"--instance {instance_name!r}: not a catalogued GPU instance type"
                            f"{did_you_mean(instance_name, catalog.INSTANCE_TYPES)} (catalogued: "
                            f"{', '.join(catalog.INSTANCE_TYPES)})")
        sizing = size_for(model, instance, replicas)
        if sizing is None:
            fits = [s.instance.name for s in _all_sizings(model, replicas)]
            raise InitError(f"--instance {instance_name}: {model_id} does not fit on one {instance_name} at any "
                            f"tensor-parallel size — use one of {', '.join(fits) or 'no catalogued type'}")
        return sizing
    options = _all_sizings(model, replicas)
    if not options:
        largest = max(catalog.INSTANCE_TYPES.values(), key=lambda i: (i.gpus * i.gpu_memory_mib, i.gpus))
        try:
            check_fit(model, largest, ServingShape(replicas, largest.gpus, min(MAX_MODEL_LEN, model.max_context), 0.92))
            reason = ""
        except FitError as exc:
            reason = f": {exc.message}"
        raise InitError(f"--model {model_id}: fits no catalogued instance type on one node{reason}")
    return min(options, key=lambda s: (s.monthly_usd, s.tensor_parallel_size))


def _all_sizings(model: catalog.ModelArchitecture, replicas: int) -> list[Sizing]:
    return [s for i in catalog.INSTANCE_TYPES.values() if (s := size_for(model, i, replicas)) is not None]


def render(name: str, model_id: str, sizing: Sizing, *, adopt: Optional[str], serving: str, environment: str,
           region: str, command: str) -> tuple[str, list[str]]:
    """(stack file text, the placeholders to fill) for the chosen sizing."""
    model = catalog.MODELS[model_id]
    i, tp = sizing.instance, sizing.tensor_parallel_size
    fills: list[str] = []
    if adopt is None:
        fills.append(f"servingstack:cluster.publicAccessCidrs: the CIDRs your `pulumi up` runner egresses from "
                     f"(now the documentation range {PLACEHOLDER_CIDR}, which reaches no runner)")
    if serving == "nim":
        fills.append("servingstack:ngcApiKey: `pulumi config set --secret servingstack:ngcApiKey <NGC API key>`")
    elif model.gated:
        fills.append(f"servingstack:hfToken: `pulumi config set --secret servingstack:hfToken <token>` ({model_id} "
                     "is gated on Hugging Face: accept its licence with that account)")
    lines = [
        f"# Written by `{command}`.",
        f"# Serves {model_id} with {serving} on {i.name} ({i.gpus}x {i.gpu_name.upper()} "
        f"{i.gpu_memory_gib:.0f} GiB): {sizing.replicas} replica(s) x {tp} GPU(s) on {sizing.nodes} node(s),",
        f"# {sizing.fit.kv_cache_tokens} tokens of KV cache per replica ({sizing.fit.max_concurrent_sequences} "
        f"full {min(MAX_MODEL_LEN, model.max_context)}-token sequences), about ${sizing.monthly_usd:,.0f}/month "
        "of GPU nodes on demand.",
        "# Check it offline: servingstack check --stack <stack>; then pulumi preview / pulumi up.",
        "#",
        "# FILL IN before `pulumi up` (synth and check work as written):" if fills else
        "# Nothing to fill in: synth, check and pulumi up work as written.",
        *[f"#   - {f}" for f in fills],
        "config:",
        f"  aws:region: {region}  # the AWS region of the cluster",
        f"  servingstack:environment: {environment}",
        "  servingstack:cluster:",
    ]
    if adopt is not None:
        lines += ["    create: false  # adopt an existing cluster: nothing of it is created or changed",
                  f"    name: {adopt}",
                  "    # podIdentity: false   # if the cluster has no EKS Pod Identity agent (then IRSA is used)",
                  "    # subnetIds: [subnet-...]   # private subnets for the GPU nodes (default: the cluster's own)"]
    else:
        lines += [f"    name: {name}  # the EKS cluster this stack creates",
                  "    publicAccessCidrs:",
                  f"      - {PLACEHOLDER_CIDR}  # FILL IN: your deploy runner's egress CIDR(s)"]
    lines += [
        "  servingstack:gpuNodePool:",
        "    name: gpu",
        f"    instanceType: {i.name}  # ${i.on_demand_usd_per_hour:g}/h on demand ({catalog.PRICES_AS_OF})",
        "    minSize: 0",
        f"    maxSize: {max(sizing.nodes, 1)}",
        f"    desiredSize: {sizing.nodes}  # holds every replica: no cluster autoscaler is installed",
        "  servingstack:serving:",
        f"    stack: {serving}",
        f"    model: {model_id}",
        f"    replicas: {sizing.replicas}",
        f"    tensorParallelSize: {tp}  # the smallest that fits: {sizing.fit.weights_per_gpu_gib:.1f} GiB of "
        f"weights per GPU of {sizing.fit.usable_per_gpu_gib:.1f} usable",
        f"    maxModelLen: {min(MAX_MODEL_LEN, model.max_context)}",
        "    # cpuPerGpu and memoryGibPerGpu default to the instance's share per GPU",
    ]
    return "\n".join(lines) + "\n", fills


def cmd_init(args: argparse.Namespace) -> int:
    from ..config import parse_stack_config
    from .project import project_root, stacks_dir
    from .synth import engine_config

    if not NAME.match(args.name):
        raise InitError(f"NAME {args.name!r}: letters, digits, '-' and '_' (it names the EKS cluster)")
    stack = args.stack or args.name
    if not re.match(r"^[A-Za-z0-9_.-]+$", stack):
        raise InitError(f"--stack {stack!r}: a Pulumi stack name is letters, digits, '-', '_' and '.'")
    sizing = choose(args.model, args.instance, args.environment)
    command = shlex.join(["servingstack", *getattr(args, "argv", ["init", args.name, "--model", args.model])])
    text, fills = render(args.name, args.model, sizing, adopt=args.adopt, serving=args.serving,
                         environment=args.environment, region=args.region, command=command)
    # What init writes must load and pass every plan-time check, as `pulumi up` would run them.
    config, _, _ = engine_config(yaml.safe_load(text)["config"])
    parse_stack_config(config, notices=[])
    path = Path(args.out) if args.out else stacks_dir(project_root()) / f"Pulumi.{stack}.yaml"
    if path.exists() and not args.force:
        raise InitError(f"{path} exists — pass --force to overwrite it, or choose another --stack")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}: {args.model} on {sizing.nodes} x {sizing.instance.name}, tensorParallelSize "
          f"{sizing.tensor_parallel_size}, {sizing.replicas} replica(s)")
    for fill in fills:
        print(f"  FILL IN {fill}")
    return 0
