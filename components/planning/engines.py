"""Pure data: what each pinned serving-engine release accepts, with sources. No Pulumi import.

vLLM releases: how the container is started and how each configurable option is spelled for that
release's own argument parser. tests/test_engine_flags.py runs every variant the config can produce
through the real parser of each release here (built from the release's wheel, `make engines`), and
checks the `lacks` entries are really rejected by it, so these tables cannot drift from the code.

Triton releases: the vLLM release the tritonserver <yy.mm>-vllm-python-py3 image bundles (model.json
keys must be its engine arguments; tests check them against that release's EngineArgs).

NIM releases: the environment contract of each NIM LLM release line (1.x multi-backend, 2.x vLLM
only) and the paths the container writes, which get writable volumes under a read-only root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .errors import KeyedError

ENGINES_AS_OF = "2026-12-01"


# ---- vLLM --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VllmRelease:
    """One vLLM release as its OpenAI-compatible server parses its command line."""

    version: str
    released: str
    command: tuple[str, ...]
    """Container command; () keeps the image's ENTRYPOINT."""
    model_positional: bool
    """`vllm serve <model>` (True) or `--model <model>` (the api_server entrypoint)."""
    prefix_caching_off: str
    chunked_prefill_on: str
    chunked_prefill_off: str
    hf_transfer: bool
    """Whether downloads use hf_transfer (HF_HUB_ENABLE_HF_TRANSFER=1): the image ships it and its
    huggingface_hub reads the variable (hub >= 1.0 deprecates it for hf_xet)."""
    lacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Config key -> values this release does not accept (checked against its parser)."""
    source: str = ""


VLLM_RELEASES: dict[str, VllmRelease] = {r.version: r for r in [
    VllmRelease(
        "0.8.4", "2025-04-14",
        # docker/Dockerfile at v0.8.4, stage vllm-openai: ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        command=(), model_positional=False,
        # vllm/engine/arg_utils.py (0.8.4 wheel): --enable-prefix-caching is BooleanOptionalAction;
        # --enable-chunked-prefill is StoreBoolean(nargs="?"): no --no- form, a value instead.
        prefix_caching_off="--no-enable-prefix-caching",
        chunked_prefill_on="--enable-chunked-prefill", chunked_prefill_off="--enable-chunked-prefill=false",
        # Dockerfile vllm-openai-base installs hf_transfer; huggingface-hub 0.30 reads the variable.
        hf_transfer=True,
        # --load-format choices of 0.8.4 (LoadFormat enum) have no runai_streamer_sharded.
        lacks={"vllm.loadFormat": ("runai_streamer_sharded",)},
        source="vllm 0.8.4 wheel: vllm/entrypoints/openai/cli_args.py make_arg_parser, vllm/engine/arg_utils.py",
    ),
    VllmRelease(
        "0.33.0", "2026-11",
        # vllm/entrypoints/cli/serve.py (0.33.0): `vllm serve [model_tag] [options]`; `--model` is
        # deprecated there ("will be removed"), and python -m ...api_server prints a deprecation.
        command=("vllm", "serve"), model_positional=True,
        # EngineArgs.add_cli_args (0.33.0): EnableDisableAction --enable-X/--disable-X.
        prefix_caching_off="--disable-prefix-caching",
        chunked_prefill_on="--enable-chunked-prefill", chunked_prefill_off="--disable-chunked-prefill",
        # requires huggingface_hub>=1.31: HF_HUB_ENABLE_HF_TRANSFER is deprecated ("hf_transfer is not
        # used anymore"); downloads go through hf_xet.
        hf_transfer=False,
        source="vllm 0.33.0 wheel: vllm/entrypoints/cli/serve.py ServeSubcommand, vllm/engine/arg_utils.py",
    ),
]}

#: The prod reference stays flag-for-flag on the source document's release.
VLLM_DEFAULT_RELEASE = "0.8.4"
VLLM_IMAGE_REPOSITORY = "vllm/vllm-openai"

_VERSION_TAG = re.compile(r":v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?:[-@].*)?$")


def version_from_image(image: str) -> Optional[str]:
    """The release an image tag names (`vllm/vllm-openai:v0.8.4` -> "0.8.4"), else None."""
    name = image.split("@", 1)[0]
    match = _VERSION_TAG.search(name)
    return match.group(1) if match else None


class ReleaseError(KeyedError):
    """A release that cannot be told or is not supported; `key` is the config key to change."""


def vllm_release(image: Optional[str], release: Optional[str] = None) -> VllmRelease:
    """The supported vLLM release an image runs: `release` when given, else its tag's version."""
    supported = ", ".join(VLLM_RELEASES)
    if release is not None:
        if release not in VLLM_RELEASES:
            raise ReleaseError("vllm.release", f"'{release}' is not a supported vLLM release — use one of "
                               f"{supported} (flags are checked against each one's own parser)")
        return VLLM_RELEASES[release]
    if image is None:
        return VLLM_RELEASES[VLLM_DEFAULT_RELEASE]
    version = version_from_image(image)
    if version is None:
        raise ReleaseError("vllm.image", f"'{image}' — its tag does not name a vLLM version; set "
                           f"serving.vllm.release to the release it runs ({supported})")
    if version not in VLLM_RELEASES:
        raise ReleaseError("vllm.image", f"'{image}' runs vLLM {version}, which is not a supported release — "
                           f"use a vllm/vllm-openai tag of {supported}")
    return VLLM_RELEASES[version]


def vllm_unsupported(release: VllmRelease, options: dict[str, object]) -> Optional[tuple[str, str]]:
    """(key, message) for the first configured option the release does not have, else None."""
    for key, value in options.items():
        if value in release.lacks.get(key, ()):
            others = [r.version for r in VLLM_RELEASES.values() if value not in r.lacks.get(key, ())]
            return key, (f"'{value}' — vLLM {release.version} does not have it"
                         + (f" (vLLM {', '.join(others)} does)" if others else "")
                         + " — choose another value or another release")
    return None


# ---- Triton ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TritonRelease:
    tag: str
    bundled_vllm: str
    source: str


TRITON_RELEASES: dict[str, TritonRelease] = {r.tag: r for r in [
    TritonRelease("24.08", "0.5.3.post1",
                  "triton-inference-server/server r24.08 build.py TRITON_VERSION_MAP (vllm 0.5.3.post1); "
                  "vllm_backend r24.08 src/model.py builds AsyncEngineArgs(**model.json)"),
]}


# ---- NIM ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NimReleaseLine:
    """What one NIM LLM major release line needs from the pod."""

    major: int
    writable_paths: tuple[str, ...]
    """Directories the container writes besides its cache (NIM_CACHE_PATH) and /tmp."""
    home: str
    """HOME (inside a writable path)."""
    env_removed: tuple[str, ...]
    """Variables of the other line this one does not read (not set for it)."""
    api_key_required: bool
    """Whether every model of the line needs NGC_API_KEY (2.x: only Production Branch and pre-2.0.10)."""
    source: str


NIM_RELEASE_LINES: dict[int, NimReleaseLine] = {r.major: r for r in [
    NimReleaseLine(
        1,
        writable_paths=("/opt/nim/workspace", "/opt/nim/nginx", "/opt/nim/generated_configs", "/opt/nim/.config",
                        "/opt/nim/.triton", "/.cache"),
        home="/.cache", env_removed=(), api_key_required=True,
        source="real-deploy-findings K6: a NIM ServingRuntime run on a live cluster mounts emptyDirs at "
               "/opt/nim/{workspace,nginx,generated_configs,.cache,.config,.triton} and /.cache with HOME=/.cache "
               "('Missing mounts cause container crashes'); NVIDIA/k8s-nim-operator manifests/scc.yaml "
               "(readOnlyRootFilesystem: false); nim-llm chart containerSecurityContext {}",
    ),
    NimReleaseLine(
        2,
        # vLLM is the only backend: no nginx or Triton state; the workspace holds the served model
        # (/v1/models "root": "/opt/nim/workspace") and generated configs remain.
        writable_paths=("/opt/nim/workspace", "/opt/nim/generated_configs", "/opt/nim/.config", "/.cache"),
        home="/.cache", env_removed=("OUTLINES_CACHE_DIR",), api_key_required=False,
        source="docs.nvidia.com/nim/large-language-models 2.0.0 1.x-migration-guide (vLLM sole backend, nim-serve, "
               "many 1.x variables removed), 2.0.1 genindex (the 2.x variables), 2.0.10 (public models without "
               "an NGC key); /opt/nim/workspace mounted writable in NVIDIA's own 2.x run examples",
    ),
]}

_NIM_TAG = re.compile(r":(\d+)\.\d+(?:\.\d+)?(?:[-.].*)?$")


def nim_major(image: str, release: Optional[str] = None) -> int:
    """The NIM LLM release line (major version) of an image, from `release` or its tag."""
    text = release if release is not None else image.split("@", 1)[0]
    match = re.match(r"^(\d+)\.", text) if release is not None else _NIM_TAG.search(text)
    if match is None:
        raise ReleaseError("nim.release" if release is not None else "nim.image",
                           f"'{text}' — cannot tell the NIM LLM release line; pin the image to a version tag "
                           f"or set serving.nim.release (e.g. \"1.8.0\" or \"2.0.12\")")
    major = int(match.group(1))
    if major not in NIM_RELEASE_LINES:
        raise ReleaseError("nim.release" if release is not None else "nim.image",
                           f"'{text}' is NIM LLM {major}.x, not a supported release line — use "
                           f"{' or '.join(f'{m}.x' for m in NIM_RELEASE_LINES)}")
    return major


def nim_needs_api_key(image: str, release: Optional[str] = None) -> bool:
    """NIM 1.x always needs NGC_API_KEY; 2.x only for Production Branch (-pb) images and releases
    before 2.0.10 (2.0.10 release notes)."""
    line = NIM_RELEASE_LINES[nim_major(image, release)]
    if line.api_key_required:
        return True
    text = release if release is not None else image.split("@", 1)[0].rsplit(":", 1)[-1]
    if "-pb" in text:
        return True
    parts = re.match(r"^(\d+)\.(\d+)\.(\d+)", text)
    return parts is not None and tuple(int(p) for p in parts.groups()) < (2, 0, 10)
