"""`servingstack advise` (components/tools/advise.py): the options, their order, the rules, the JSON
shape the README documents, and the top options written as stack files and synthesized."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import stack_config, synth_config, write_stack_file
from servingstack.config import parse_stack_config
from servingstack.config.estimate import estimate
from servingstack.config.workload import WorkloadConfig
from servingstack.tools import advise
from servingstack.tools.cli import EXIT_CONFIG, EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent
L70B = "meta-llama/Llama-3.1-70B-Instruct"
JSON_KEYS = ["instanceType", "tensorParallelSize", "replicasPerNode", "nodes", "stack", "quantization",
             "kvCacheDtype", "monthlyUsd", "usdPerMillionOutputTokens", "itlExpectedMs", "ttftExpectedMs", "idleGpus"]


@functools.lru_cache(maxsize=None)
def options_70b() -> tuple[advise.Option, ...]:
    return tuple(advise.options(L70B, WorkloadConfig()))


@functools.lru_cache(maxsize=None)
def cli_json(*argv: str) -> list[dict]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["advise", "--model", L70B, "--json", *argv]) == EXIT_OK
    doc = json.loads(buf.getvalue())
    assert list(doc) == ["options"]
    return doc["options"]


def test_json_shape_and_order():
    found = cli_json()
    assert found and all(list(o) == JSON_KEYS for o in found)
    costs = [o["usdPerMillionOutputTokens"] for o in found]
    assert costs == sorted(costs)  # best per token first
    assert {o["stack"] for o in found} == {"vllm", "triton", "nim"}
    assert {o["quantization"] for o in found} == {None, "fp8"} and {o["kvCacheDtype"] for o in found} == {"auto", "fp8"}
    assert all(o["idleGpus"] >= 0 and o["nodes"] >= 1 for o in found)


def test_four_packed_replicas_per_p4de_beat_one_replica_per_p4de():
    """Must hold: for Llama-3.1-70B, 4 TP-2 replicas packed on a p4de rank cheaper per token than one
    TP-2 replica per p4de, for every stack and precision."""
    found = cli_json()
    p4de = [o for o in found if o["instanceType"] == "p4de.24xlarge" and o["tensorParallelSize"] == 2]
    compared = 0
    for packed in (o for o in p4de if o["replicasPerNode"] == 4):
        alone = next(o for o in p4de if o["replicasPerNode"] == 1 and
                     (o["stack"], o["quantization"], o["kvCacheDtype"]) ==
                     (packed["stack"], packed["quantization"], packed["kvCacheDtype"]))
        assert packed["usdPerMillionOutputTokens"] < alone["usdPerMillionOutputTokens"]
        assert found.index(packed) < found.index(alone)
        assert packed["idleGpus"] == 0 and alone["idleGpus"] == 6 * alone["nodes"]
        compared += 1
    assert compared == 7  # vllm x 4 precisions, triton x 2, nim x 1


def test_option_figures_are_the_estimate_of_its_stack():
    o = options_70b()[0]
    cfg = parse_stack_config({**advise.BASE_CONFIG, **advise.stack_snippet(o, L70B, WorkloadConfig())})
    e = estimate(cfg)
    assert o.as_json()["monthlyUsd"] == round(e.cost.total_usd, 2)
    assert o.as_json()["usdPerMillionOutputTokens"] == round(e.performance.usd_per_million_output_tokens, 2)
    assert e.performance.replica.queued == 0  # every request in flight has KV cache


def test_every_option_is_a_valid_stack_config():
    for o in options_70b():
        cfg = parse_stack_config({**advise.BASE_CONFIG, **advise.stack_snippet(o, L70B, WorkloadConfig())})
        assert cfg.serving_pool.instance_type == o.instance_type
        assert cfg.serving.replicas == o.replicas == o.nodes * o.replicas_per_node


def _as_stack_file(o: advise.Option) -> dict:
    """The advice merged into the prod stack file, as a user would paste it."""
    config = stack_config("prod")
    for key, value in advise.stack_snippet(o, L70B, WorkloadConfig()).items():
        config[key] = value
    return config


@pytest.mark.parametrize("rank", [0, 1, 2, 3, 4])
def test_top_options_synthesize_as_stack_files(rank):
    o = options_70b()[rank]
    result = synth_config(_as_stack_file(o), "advised")
    gpu = result.outputs["gpuSummary"]
    assert (gpu["instanceType"], gpu["gpusPerReplica"], gpu["replicas"], gpu["gpuNodes"]) == (
        o.instance_type, o.tensor_parallel_size, o.replicas, o.nodes)
    assert gpu["idleGpus"] == o.as_json()["idleGpus"]
    assert result.outputs["performance"]["itlExpectedMs"] == pytest.approx(o.as_json()["itlExpectedMs"], abs=0.06)
    deployments = result.of_type("kubernetes:apps/v1:Deployment")
    assert sum(d.inputs["spec"]["replicas"] for d in deployments) == o.replicas


def test_the_packed_p4de_option_synthesizes():
    o = next(o for o in options_70b() if o.instance_type == "p4de.24xlarge" and o.tensor_parallel_size == 2
             and o.replicas_per_node == 4 and o.stack == "vllm" and o.quantization is None and o.kv_cache_dtype == "auto")
    result = synth_config(_as_stack_file(o), "advised")
    assert result.outputs["gpuSummary"]["idleGpus"] == 0 and result.outputs["gpuSummary"]["replicas"] == 4


def test_cli_text_prints_rules_and_the_snippet(tmp_path, capsys):
    assert main(["advise", "--model", L70B]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"advise: {L70B}, 32 concurrent 1024-in / 256-out requests")
    assert "rules (the source document's decision framework):" in out
    assert "open model:" in out and "Apache 2.0" in out
    snippet = yaml.safe_load(out[out.index("servingstack:gpuNodePool:"):])
    assert snippet["servingstack:serving"]["stack"] == "vllm"
    config = stack_config("prod")
    config.update(snippet)
    assert main(["synth", "--config", str(write_stack_file(tmp_path, config)), "--out", str(tmp_path / "o")]) == EXIT_OK


def test_rules_follow_the_decision_framework(capsys):
    lines, recommended = advise.rules("Qwen/Qwen2.5-72B-Instruct", multi_model=False, nvaie_licence=True)
    assert recommended == "vllm" and any(r.startswith("NIM: NVIDIA publishes no NIM") for r in lines)
    assert advise.rules(L70B, multi_model=True, nvaie_licence=False)[1] == "triton"
    assert advise.rules(L70B, multi_model=False, nvaie_licence=True)[1] == "nim"
    assert main(["advise", "--model", "Qwen/Qwen2.5-72B-Instruct", "--json"]) == EXIT_OK
    assert all(o["stack"] != "nim" for o in json.loads(capsys.readouterr().out)["options"])
    assert main(["advise", "--model", L70B, "--multi-model", "--top", "3"]) == EXIT_OK
    assert "choice: triton on" in capsys.readouterr().out


def test_targets_and_budget_filter():
    tight = cli_json("--workload", "itlP50Ms=30,ttftP99Ms=400")
    assert tight and all(o["itlExpectedMs"] <= 30 and o["ttftExpectedMs"] <= 400 for o in tight)
    assert len(tight) < len(cli_json())
    cheap = cli_json("--max-monthly-usd", "17000")
    assert cheap and all(o["monthlyUsd"] <= 17000 for o in cheap)
    only = cli_json("--stack", "nim,triton")
    assert {o["stack"] for o in only} == {"nim", "triton"}


def test_a_bigger_workload_needs_more_nodes():
    found = cli_json("--workload", "concurrency=256")
    alone = [o for o in found if o["instanceType"] == "p4de.24xlarge" and o["tensorParallelSize"] == 2
             and o["replicasPerNode"] == 1 and o["quantization"] is None and o["kvCacheDtype"] == "auto"]
    assert alone and all(o["nodes"] >= 256 / 19 for o in alone)  # 19 requests of 1,280 tokens per replica


@pytest.mark.parametrize("argv,needle", [
    (["--model", "meta-llama/Llama-3.1-70B"], "error: servingstack:serving.model: 'meta-llama/Llama-3.1-70B' is not "
                                              "in the model catalog — did you mean 'meta-llama/Llama-3.1-70B-Instruct'?"),
    (["--model", L70B, "--workload", "concurrency=0"], "error: servingstack:workload.concurrency: 0 — "),
    (["--model", L70B, "--workload", "concurrencyy=3"], "error: servingstack:workload.concurrencyy: unknown key — "
                                                        "did you mean 'concurrency'?"),
    (["--model", L70B, "--workload", "32"], "error: servingstack:workload: '32' is not key=value"),
    (["--model", L70B, "--stack", "prod"], "error: servingstack:serving.stack: 'prod' is not a serving stack"),
])
def test_bad_arguments_are_one_line_exit_2(argv, needle, capsys):
    assert main(["advise", *argv]) == EXIT_CONFIG
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(needle) and captured.err.count("\n") == 1


def test_readme_documents_the_json_shape_and_the_packed_figures():
    text = (ROOT / "README.md").read_text()
    example = text[text.index('{"options": [{'):]
    keys = re.findall(r'"(\w+)":', example[:example.index("...]}")])
    assert keys == ["options", *JSON_KEYS]
    found = cli_json()
    p4de = [o for o in found if o["instanceType"] == "p4de.24xlarge" and o["tensorParallelSize"] == 2
            and o["stack"] == "vllm" and o["quantization"] is None and o["kvCacheDtype"] == "auto"]
    packed = next(o for o in p4de if o["replicasPerNode"] == 4)["usdPerMillionOutputTokens"]
    alone = next(o for o in p4de if o["replicasPerNode"] == 1)["usdPerMillionOutputTokens"]
    assert f"one p4de cost ${packed:.2f} per million output tokens against ${alone:.2f}" in text
