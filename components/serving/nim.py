"""NimServer: an NVIDIA NIM for LLMs container, pulled from nvcr.io with the NGC credentials."""

from typing import Any, Mapping, Optional

import pulumi
from typing_extensions import NotRequired

from ..config.errors import RuleError
from ..planning import catalog
from ..k8s import podspec
from .common import ServingArgs, ServingComponent, defaults, node_selector
from .vllm import image_waivers

NIM_CACHE_PATH = "/opt/nim/.cache"
NIM_UID = 1000  # the image's nim user


class NimServerArgs(ServingArgs):
    pull_secret_name: pulumi.Input[str]
    """nvcr.io image pull secret (NgcCredentials `pull_secret_name`)."""
    api_secret_name: pulumi.Input[str]
    """Secret holding NGC_API_KEY (NgcCredentials `api_secret_name`)."""
    model_profile: NotRequired[str]
    """NIM_MODEL_PROFILE (from `list-model-profiles`). Default unset: NIM chooses for the GPUs."""


def nim_image(args: NimServerArgs) -> str:
    image = args.get("image") or catalog.nim_image_for(args["model"])
    if not image:
        raise ValueError(f"no NIM image is catalogued for {args['model']}; pass `image`")
    return image


def nim_env(args: NimServerArgs, api_secret: str) -> list[dict]:
    d = defaults(args)
    env = [
        {"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": api_secret, "key": "NGC_API_KEY"}}},
        {"name": "NIM_CACHE_PATH", "value": NIM_CACHE_PATH},
        {"name": "NIM_SERVER_PORT", "value": str(podspec.SERVING_PORT)},
        {"name": "NIM_SERVED_MODEL_NAME", "value": d["served_model_name"]},
        {"name": "NIM_MAX_MODEL_LEN", "value": str(d["max_model_len"])},
        {"name": "NIM_JSONL_LOGGING", "value": "1"},
        {"name": "OUTLINES_CACHE_DIR", "value": "/tmp/outlines"},
    ]
    if args.get("model_profile"):
        env.append({"name": "NIM_MODEL_PROFILE", "value": args["model_profile"]})
    return env


def nim_workload(name: str, args: NimServerArgs, pull_secret: str, api_secret: str, labels: dict[str, str],
                 tolerations: list[dict]) -> podspec.ServingWorkload:
    d = defaults(args)
    image = nim_image(args)
    return podspec.ServingWorkload(
        name=f"nim-{d['model_slug']}", namespace=args["namespace"], stack="nim", model_slug=d["model_slug"],
        image=image, container_name="nim", args=[],
        probes=podspec.Probes(ready_path="/v1/health/ready", live_path="/v1/health/live",
                              startup_seconds=d["startup_seconds"]),
        gpus=d["tp"], replicas=d["replicas"], cpu=d["cpu"], memory_gib=d["memory_gib"], shm_gib=d["shm_gib"],
        cache_mount_path=NIM_CACHE_PATH, cache_size_gib=d["cache_size_gib"],
        service_account=args.get("service_account", "llm-server"), tolerations=tolerations,
        node_selector=node_selector(labels), env=nim_env(args, api_secret), image_pull_secrets=[pull_secret],
        run_as_user=NIM_UID, hard_spread=args.get("hard_spread", False), metrics_path="/v1/metrics",
        checkov_waivers={
            **image_waivers(image),
            "CKV_K8S_35": "NIM reads its NGC key only from the NGC_API_KEY environment variable (secretKeyRef)",
            "CKV_K8S_40": "the NIM image's files and cache belong to its nim user (UID 1000)",
        },
    )


class NimServer(ServingComponent):
    """NVIDIA NIM serving one model: OpenAI-compatible on port 8000 (/v1/*), health on
    /v1/health/{live,ready}, metrics on /v1/metrics; optimized engine chosen per GPU by NIM."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        super().check_args(args)
        if not args.get("image") and catalog.nim_image_for(args["model"]) is None:
            raise RuleError("image", f"is needed: no NIM image is catalogued for {args['model']!r} — pass image "
                                     "(nvcr.io/nim/<org>/<model>:<tag>) or serve a model NVIDIA publishes a NIM for")

    def __init__(self, name: str, args: NimServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:NimServer", name, opts, args)
        secrets = (pulumi.Output.from_input(args["pull_secret_name"]), pulumi.Output.from_input(args["api_secret_name"]))
        self._register(name, args,
                       lambda labels, tols, pull, api: nim_workload(name, args, pull, api, labels, tols),
                       extra_inputs=secrets)
