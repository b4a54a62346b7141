"""Issue 12: every vLLM command line the config can produce is accepted by the real argument parser of
each supported release, and every model.json key is an engine argument of the vLLM the pinned Triton
image bundles.

The oracles are the releases' own code, built by `make engines` (a dependency of `make test`):
  .engines/vllm-<version>/   that release's wheel in its own virtualenv (--no-deps), with only what
                             importing its parser needs (tests/engines/vllm-<version>.txt) and CPU torch;
                             tests/engines/vllm_parse.py builds the parser there exactly as the server
                             entrypoint does (0.8.4: api_server's make_arg_parser; 0.33.0: `vllm serve`)
                             and parses each command line in one subprocess per release.
  .engines/wheels/           the vLLM 0.5.3.post1 wheel; EngineArgs/AsyncEngineArgs fields read from its
                             vllm/engine/arg_utils.py (AST: importing 0.5.3 would need its own torch).
Without them the tests skip with that reason — except under CI, where a missing oracle fails.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import json
import os
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any, get_args

import pytest

from conftest import ROOT, set_key, stack_config, synth_config
from servingstack.config import ConfigError, VllmConfig, ServingConfig, parse_stack_config
from servingstack.planning import engines
from servingstack.tools.synth import engine_config

ENGINES = Path(os.environ.get("SERVINGSTACK_ENGINES", ROOT / ".engines"))
HARNESS = ROOT / "tests" / "engines" / "vllm_parse.py"
FIELDS = ["model", "served_model_name", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization",
          "enable_prefix_caching", "max_num_seqs", "dtype", "quantization", "kv_cache_dtype", "load_format",
          "speculative_config", "enable_chunked_prefill", "max_num_batched_tokens"]

#: Every optional setting on and off (config key under servingstack:serving -> value).
VARIANTS: dict[str, dict[str, Any]] = {
    "reference": {},
    "chunked-prefill-on": {"vllm.enableChunkedPrefill": True},
    "chunked-prefill-off": {"vllm.enableChunkedPrefill": False},
    "prefix-caching-off": {"enablePrefixCaching": False},
    "speculative-draft": {"vllm.speculativeModel": "meta-llama/Llama-3.2-1B-Instruct", "vllm.numSpeculativeTokens": 5},
    "speculative-ngram": {"vllm.speculativeModel": "[ngram]", "vllm.numSpeculativeTokens": 4},
    "quantization-awq": {"quantization": "awq", "model": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
                         "customModel": {**(INT4 := {"parameters": 8.03e9, "layers": 32, "hiddenSize": 4096,
                                                     "attentionHeads": 32, "kvHeads": 8, "headDim": 128,
                                                     "nativeDtype": "int4", "gated": False})}},
    "quantization-gptq": {"quantization": "gptq", "model": "hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4",
                          "customModel": INT4},
    "quantization-fp8": {"quantization": "fp8"},
    "kv-cache-fp8": {"vllm.kvCacheDtype": "fp8"},
    "kv-cache-fp8-e4m3": {"vllm.kvCacheDtype": "fp8_e4m3"},
    "kv-cache-fp8-e5m2": {"vllm.kvCacheDtype": "fp8_e5m2"},
    "s3-weights": {"weightsSource": "s3"},
    "s3-weights-sharded": {"weightsSource": "s3", "vllm.loadFormat": "runai_streamer_sharded"},
    "load-format-safetensors": {"vllm.loadFormat": "safetensors"},
    "load-format-auto": {"vllm.loadFormat": "auto"},
    "served-model-name": {"servedModelName": "llama-8b"},
    "dtype-bfloat16": {"dtype": "bfloat16"},
    "extra-args": {"vllm.extraArgs": ["--max-num-batched-tokens", "8192"]},
}


#: The variants run on the smallest shipped vLLM stack (fastest to synthesize); the prod reference
#: is checked flag for flag below and is the "reference" variant's shape on its own stack.
BASE = "dev-small"


def _release_config(version: str, variant: dict[str, Any], base: str = BASE) -> dict:
    cfg = set_key(stack_config(base), "servingstack:serving.vllm.image", f"vllm/vllm-openai:v{version}")
    for key, value in variant.items():
        set_key(cfg, f"servingstack:serving.{key}", value)
    return cfg


def _refused(version: str, variant: dict[str, Any]) -> bool:
    release = engines.VLLM_RELEASES[version]
    return any(variant.get(key) in values for key, values in release.lacks.items() if key.startswith("vllm."))


def _cases() -> list[tuple[str, str]]:
    return [(v, name) for v in engines.VLLM_RELEASES for name, variant in VARIANTS.items() if not _refused(v, variant)]


@functools.lru_cache(maxsize=None)
def _container(version: str, name: str) -> dict:
    result = synth_config(_release_config(version, VARIANTS[name]))
    return result.manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]


def _python(version: str) -> Path:
    python = ENGINES / f"vllm-{version}" / "bin" / "python"
    if not (ENGINES / f"vllm-{version}" / ".installed").exists():
        if os.environ.get("CI"):
            pytest.fail(f"vLLM {version}'s parser is missing under CI: `make test` builds it (make engines)")
        pytest.skip(f"vLLM {version}'s own parser is not built here: run `make engines` ({ENGINES})")
    return python


_RUNNING: dict[str, tuple[subprocess.Popen, Path]] = {}


def _start(version: str) -> None:
    """Start the release's parser subprocess (all releases run at once: one import each, ~30 s)."""
    if version in _RUNNING:
        return
    python = _python(version)
    out = Path(tempfile.mkdtemp()) / "out.json"
    request = json.dumps({"variants": _variants(version), "fields": FIELDS})
    proc = subprocess.Popen([str(python), str(HARNESS), str(out)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(request)
    proc.stdin.close()
    _RUNNING[version] = (proc, out)


#: Command lines no config produces, run through the parser too: the oracle can fail.
PROBES = {
    # What servingstack emitted before: 0.8.4 has no --no- form of StoreBoolean --enable-chunked-prefill.
    "old-no-enable-chunked-prefill": ["--model", "m", "--no-enable-chunked-prefill"],
    "sharded-load-format": ["--model", "m", "--load-format", "runai_streamer_sharded"],
    # (argparse accepts unambiguous prefixes, so a truncated flag such as --max-num-seq would pass.)
    "misspelt-flag": ["--model", "m", "--max-num-sequences", "8"],
}


def _variants(version: str) -> list[dict]:
    release = engines.VLLM_RELEASES[version]
    variants = [{"id": name, "command": list(_container(version, name).get("command") or []),
                 "args": _container(version, name)["args"]} for v, name in _cases() if v == version]
    for name, args in PROBES.items():
        if release.model_positional:
            args = [args[1], *args[2:]]
        variants.append({"id": f"probe:{name}", "command": list(release.command), "args": args})
    return variants


def _run(version: str, start_others: bool) -> dict:
    if start_others:
        for other in engines.VLLM_RELEASES:
            if (ENGINES / f"vllm-{other}" / ".installed").exists():
                _start(other)
    _start(version)
    proc, out = _RUNNING[version]
    stderr = proc.stderr.read()
    assert proc.wait(timeout=900) == 0 and out.exists(), stderr[-3000:]
    return json.loads(out.read_text())


@functools.lru_cache(maxsize=None)
def parsed(version: str) -> dict:
    """The release's parser over every variant's recorded command line (and the probes).

    Under pytest-xdist (`make test` runs -n auto) the workers of one run share each release's
    result: the first to need it runs the parser under a file lock, the others read what it wrote
    (same request, same parser), instead of every worker importing every release."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run_id:
        return _run(version, start_others=True)
    shared = Path(tempfile.gettempdir()) / f"servingstack-vllm-parse-{run_id}"
    shared.mkdir(exist_ok=True)
    done = shared / f"{version}.json"
    with open(shared / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            partial = shared / f"{version}.json.part"
            partial.write_text(json.dumps(_run(version, start_others=False)))
            partial.replace(done)
    return json.loads(done.read_text())


@pytest.mark.parametrize("version,name", _cases())
def test_release_parser_accepts_the_variant(version, name):
    result = parsed(version)
    assert result["version"] == version
    outcome = result["results"][name]
    assert outcome["ok"], f"vLLM {version} rejects {name}: {outcome['error']} (args {_container(version, name)['args']})"


@pytest.mark.parametrize("version", list(engines.VLLM_RELEASES))
def test_the_parsed_settings_are_the_configured_ones(version):
    got = {name: r["engine"] for name, r in parsed(version)["results"].items() if r["ok"]}
    ref = got["reference"]
    serving = stack_config(BASE)["servingstack:serving"]
    assert ref["tensor_parallel_size"] == serving["tensorParallelSize"] and ref["max_model_len"] == serving["maxModelLen"]
    assert ref["max_num_seqs"] == serving["maxNumSeqs"] and ref["model"] == serving["model"]
    assert ref["gpu_memory_utilization"] == serving["gpuMemoryUtilization"]
    assert ref["enable_prefix_caching"] is True
    assert got["prefix-caching-off"]["enable_prefix_caching"] is False
    assert got["chunked-prefill-on"]["enable_chunked_prefill"] is True
    assert got["chunked-prefill-off"]["enable_chunked_prefill"] is False
    assert got["quantization-awq"]["quantization"] == "awq" and got["kv-cache-fp8"]["kv_cache_dtype"] == "fp8"
    assert got["s3-weights"]["model"].startswith("s3://") and got["s3-weights"]["load_format"] == "runai_streamer"
    assert got["served-model-name"]["served_model_name"] in ("llama-8b", ["llama-8b"])
    assert got["speculative-ngram"]["speculative_config"]["method"] == "ngram"
    assert got["extra-args"]["max_num_batched_tokens"] == 8192


@pytest.mark.parametrize("version", list(engines.VLLM_RELEASES))
def test_the_oracle_rejects_what_the_release_does_not_have(version):
    results = parsed(version)["results"]
    assert not results["probe:misspelt-flag"]["ok"]
    release = engines.VLLM_RELEASES[version]
    # The lacks table is the parser's truth: a value it lists is rejected, one it omits accepted.
    sharded_lacking = "runai_streamer_sharded" in release.lacks.get("vllm.loadFormat", ())
    assert results["probe:sharded-load-format"]["ok"] is not sharded_lacking
    if version == "0.8.4":
        assert not results["probe:old-no-enable-chunked-prefill"]["ok"]


@pytest.mark.parametrize("version", list(engines.VLLM_RELEASES))
def test_every_configurable_value_is_in_the_release_or_refused(version):
    """Values the config offers for kvCacheDtype, quantization and loadFormat are in the release's
    own registries (0.33 validates them after argparse), unless its lacks table lists them."""
    registries = parsed(version)["registries"]
    release = engines.VLLM_RELEASES[version]
    offered = {
        "kv_cache_dtype": get_args(VllmConfig.model_fields["kv_cache_dtype"].annotation),
        "quantization": get_args(get_args(ServingConfig.model_fields["quantization"].annotation)[0]),
        "load_format": get_args(get_args(VllmConfig.model_fields["load_format"].annotation)[0]),
    }
    config_key = {"load_format": "vllm.loadFormat", "kv_cache_dtype": "vllm.kvCacheDtype", "quantization": "quantization"}
    for field, values in offered.items():
        assert values, field
        known = registries.get(field)
        if known is None:
            continue  # argparse choices enforce them (0.8.4), checked by the variants above
        for value in values:
            lacking = value in release.lacks.get(config_key[field], ())
            assert (value in known) is not lacking, (version, field, value)


@pytest.mark.parametrize("version", list(engines.VLLM_RELEASES))
def test_speculative_config_and_environment_names_exist_in_the_release(version):
    result = parsed(version)
    registries = result["registries"]
    for name in ("speculative-draft", "speculative-ngram"):
        spec = result["results"][name]["engine"]["speculative_config"]
        assert set(spec) <= set(registries["speculative_config_fields"]), (name, spec)
        if registries["speculative_methods"] and "method" in spec:
            assert spec["method"] in registries["speculative_methods"]
    env = {e["name"] for e in _container(version, "reference")["env"]}
    assert {n for n in env if n.startswith("VLLM_")} <= set(registries["env_vars"])


def test_an_option_the_release_lacks_is_refused_at_config_time():
    cfg = _release_config("0.8.4", {"weightsSource": "s3", "vllm.loadFormat": "runai_streamer_sharded"})
    with pytest.raises(ConfigError) as err:
        parse_stack_config(engine_config(cfg)[0])
    message = str(err.value)
    assert message.startswith("servingstack:serving.vllm.loadFormat: 'runai_streamer_sharded'") and "\n" not in message
    assert "0.8.4" in message and "0.33.0" in message


@pytest.mark.parametrize("image,key", [("vllm/vllm-openai:v0.9.0", "serving.vllm.image"),
                                       ("registry.example.com/vllm@sha256:" + "0" * 64, "serving.vllm.image")])
def test_an_unsupported_or_unknown_release_is_refused(image, key):
    cfg = set_key(stack_config("prod"), "servingstack:serving.vllm.image", image)
    with pytest.raises(ConfigError) as err:
        parse_stack_config(engine_config(cfg)[0])
    assert str(err.value).startswith(f"servingstack:{key}:") and "\n" not in str(err.value)
    ok = set_key(cfg, "servingstack:serving.vllm.release", "0.8.4")
    if "@sha256" in image:
        parse_stack_config(engine_config(ok)[0])  # the release key tells what the digest runs


def test_prod_reference_stays_flag_for_flag_on_084():
    c = synth_config(stack_config("prod")).manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in c  # the image's own ENTRYPOINT (python3 -m vllm.entrypoints.openai.api_server)
    assert c["args"] == ["--model", "meta-llama/Llama-3.1-70B-Instruct", "--tensor-parallel-size", "2",
                         "--max-model-len", "8192", "--gpu-memory-utilization", "0.92", "--enable-prefix-caching",
                         "--max-num-seqs", "64", "--dtype", "auto"]
    new = synth_config(_release_config("0.33.0", {}, base="prod")).manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert new["command"] == ["vllm", "serve"] and new["args"][0] == "meta-llama/Llama-3.1-70B-Instruct"


# ---- Triton's bundled vLLM --------------------------------------------------------------------------

def _engine_arg_fields(version: str) -> set[str]:
    wheels = sorted((ENGINES / "wheels").glob(f"vllm-{version}-*.whl"))
    if not wheels:
        if os.environ.get("CI"):
            pytest.fail(f"the vLLM {version} wheel is missing under CI: `make test` downloads it (make engines)")
        pytest.skip(f"no vLLM {version} wheel under {ENGINES / 'wheels'}: run `make engines`")
    with zipfile.ZipFile(wheels[0]) as whl:
        tree = ast.parse(whl.read("vllm/engine/arg_utils.py"))
    fields: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("EngineArgs", "AsyncEngineArgs"):
            fields |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    assert {"model", "tensor_parallel_size"} <= fields  # the parse found the dataclasses
    return fields


@pytest.mark.parametrize("tp,model", [(2, None), (1, "meta-llama/Llama-3.1-8B-Instruct")])
def test_model_json_keys_are_engine_args_of_the_bundled_vllm(tp, model):
    cfg = set_key(stack_config("staging"), "servingstack:serving.tensorParallelSize", tp)
    set_key(cfg, "servingstack:serving.quantization", "fp8")
    if model:
        set_key(cfg, "servingstack:serving.model", model)
    result = synth_config(cfg)
    image = result.manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    bundled = engines.TRITON_RELEASES[image.rsplit(":", 1)[1].split("-")[0]].bundled_vllm
    fields = _engine_arg_fields(bundled)
    (model_json,) = [r.inputs["content"] for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
                     if r.inputs["key"].endswith("/1/model.json")]
    keys = set(json.loads(model_json))
    assert keys <= fields, keys - fields
    assert "not_an_engine_arg" not in fields  # the oracle is a set of real names, not everything
