"""NimServer: an NVIDIA NIM for LLMs container, pulled from nvcr.io with the NGC credentials."""

from typing import Any, Mapping, Optional

import pulumi
from typing_extensions import NotRequired

from ..config.errors import RuleError
from ..planning import catalog, engines
from ..k8s import podspec
from .common import ServingArgs, ServingComponent, defaults, node_selector
from .vllm import image_waivers

NIM_CACHE_PATH = "/opt/nim/.cache"
NIM_UID = 1000  # the image's nim user


class NimServerArgs(ServingArgs):
    pull_secret_name: NotRequired[pulumi.Input[str]]
    """nvcr.io image pull secret (NgcCredentials `pull_secret_name`). Required for NIM 1.x; default
    unset (an image pulled without credentials) for NIM 2.x public models."""
    api_secret_name: NotRequired[pulumi.Input[str]]
    """Secret holding NGC_API_KEY (NgcCredentials `api_secret_name`). Required where the release
    needs a key (1.x, 2.x Production Branch, before 2.0.10); default unset."""
    model_profile: NotRequired[str]
    """NIM_MODEL_PROFILE (from `list-model-profiles`). Default unset: NIM chooses for the GPUs."""
    release: NotRequired[str]
    """NIM LLM version the image runs (1.x or 2.x contract). Default: the version in the image tag."""


def nim_image(args: NimServerArgs) -> str:
    image = args.get("image") or catalog.nim_image_for(args["model"])
    if not image:
        raise ValueError(f"no NIM image is catalogued for {args['model']}; pass `image`")
    return image


def release_line(args: NimServerArgs) -> engines.NimReleaseLine:
    """The NIM LLM release line (1.x or 2.x) of the image (raises engines.ReleaseError)."""
    return engines.NIM_RELEASE_LINES[engines.nim_major(nim_image(args), args.get("release"))]


def nim_env(args: NimServerArgs, api_secret: Optional[str]) -> list[dict]:
    """The environment of the release line's contract; NGC_API_KEY only with a key secret. Pure."""
    d = defaults(args)
    line = release_line(args)
    env = [
        *([{"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": api_secret, "key": "NGC_API_KEY"}}}]
          if api_secret else []),
        {"name": "HOME", "value": line.home},
        {"name": "NIM_CACHE_PATH", "value": NIM_CACHE_PATH},
        {"name": "NIM_SERVER_PORT", "value": str(podspec.SERVING_PORT)},
        {"name": "NIM_SERVED_MODEL_NAME", "value": d["served_model_name"]},
        {"name": "NIM_MAX_MODEL_LEN", "value": str(d["max_model_len"])},
        {"name": "NIM_JSONL_LOGGING", "value": "1"},
        {"name": "OUTLINES_CACHE_DIR", "value": "/tmp/outlines"},
    ]
    if args.get("model_profile"):
        env.append({"name": "NIM_MODEL_PROFILE", "value": args["model_profile"]})
    return [e for e in env if e["name"] not in line.env_removed]


def writable_volumes(line: engines.NimReleaseLine) -> tuple[list[dict], list[dict]]:
    """An emptyDir at every path the release line writes, so the root filesystem stays read-only."""
    volumes, mounts = [], []
    for i, path in enumerate(line.writable_paths):
        name = f"nim-rw-{i}"
        volumes.append({"name": name, "emptyDir": {"sizeLimit": "4Gi" if path.endswith("workspace") else "1Gi"}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def nim_workload(name: str, args: NimServerArgs, pull_secret: Optional[str], api_secret: Optional[str],
                 labels: dict[str, str], tolerations: list[dict]) -> podspec.ServingWorkload:
    d = defaults(args)
    image = nim_image(args)
    volumes, mounts = writable_volumes(release_line(args))
    return podspec.ServingWorkload(
        name=f"nim-{d['model_slug']}", namespace=args["namespace"], stack="nim", model_slug=d["model_slug"],
        image=image, container_name="nim", args=[],
        probes=podspec.Probes(ready_path="/v1/health/ready", live_path="/v1/health/live",
                              startup_seconds=d["startup_seconds"]),
        gpus=d["tp"], replicas=d["replicas"], cpu=d["cpu"], memory_gib=d["memory_gib"], shm_gib=d["shm_gib"],
        cache_mount_path=NIM_CACHE_PATH, cache_size_gib=d["cache_size_gib"],
        service_account=args.get("service_account", "llm-server"), tolerations=tolerations,
        node_selector=node_selector(labels), env=nim_env(args, api_secret),
        image_pull_secrets=[pull_secret] if pull_secret else [], extra_volumes=volumes, extra_mounts=mounts,
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
        try:
            needs_key = engines.nim_needs_api_key(nim_image(args), args.get("release"))
        except engines.ReleaseError as exc:
            raise RuleError("release" if exc.key.endswith("release") else "image", exc.message) from None
        if needs_key and not args.get("api_secret_name"):
            raise RuleError("api_secret_name", f"is needed: {nim_image(args)} needs an NGC API key (NIM 1.x, "
                                               "Production Branch, or 2.x before 2.0.10) — pass NgcCredentials' "
                                               "api_secret_name and pull_secret_name")

    def __init__(self, name: str, args: NimServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:NimServer", name, opts, args)
        secrets = (pulumi.Output.from_input(args.get("pull_secret_name") or ""),
                   pulumi.Output.from_input(args.get("api_secret_name") or ""))
        self._register(name, args,
                       lambda labels, tols, pull, api: nim_workload(name, args, pull or None, api or None, labels, tols),
                       extra_inputs=secrets)
