"""Issue 18: Triton as a multi-model platform. A repository of an LLM, an ONNX embedding model, a
Python tokenizer and an ensemble chaining them is built from small real artifacts (an ONNX graph made
with the onnx package, a Python-backend model.py), synthesized, and held to Triton's own
model-config protobuf; bad repositories are refused in one line naming the model and the key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import onnx
import pytest
from google.protobuf import text_format
from onnx import TensorProto, helper

from servingstack.tools import cli
from servingstack.tools.output import plan_json
from conftest import STACK_NAMES, set_key, stack_config, synth, synth_config, write_stack_file
from test_config_errors import assert_one_line_error, run_cli
from test_serving import triton_model_config_module

NS = "servingstack:"
EMBED_DIM = 8
PREFIX = "models/triton/"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
COPY = "aws:s3/objectCopy:ObjectCopy"

TOKENIZER_PY = '''"""A character-level tokenizer on Triton's Python backend (test artifact)."""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.max_len = int(json.loads(args["model_config"])["parameters"]["max_len"]["string_value"])

    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text").as_numpy()[0].decode()
            ids = [min(ord(c), 999) for c in text[: self.max_len]]
            shaped = np.array([ids], dtype=np.int64)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("input_ids", shaped),
                pb_utils.Tensor("attention_mask", np.ones_like(shaped)),
                pb_utils.Tensor("prompt", np.array([f"Answer briefly: {text}".encode()], dtype=np.object_)),
            ]))
        return responses
'''


def build_embedding(path: Path, inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Path:
    """A tiny embedding model: token-table lookup, masked sum over the sequence -> [batch, EMBED_DIM]."""
    ids = helper.make_tensor_value_info(inputs[0], TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info(inputs[1], TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBED_DIM])
    initializers = [
        helper.make_tensor("table", TensorProto.FLOAT, [1000, EMBED_DIM], [0.001 * i for i in range(1000 * EMBED_DIM)]),
        helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    nodes = [
        helper.make_node("Gather", ["table", inputs[0]], ["tokens"]),
        helper.make_node("Cast", [inputs[1]], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["tokens", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["embedding"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "embedding", [ids, mask], [out], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, str]:
    tokenizer = tmp_path / "tokenizer.py"
    tokenizer.write_text(TOKENIZER_PY)
    compile(TOKENIZER_PY, str(tokenizer), "exec")  # a real Python-backend model file
    return {"embedding": str(build_embedding(tmp_path / "embed.onnx")), "tokenizer": str(tokenizer)}


def rag_models(a: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": "tokenizer", "kind": "python", "artifact": a["tokenizer"], "parameters": {"max_len": "256"},
         "inputs": [{"name": "text", "dataType": "STRING", "dims": [1]}],
         "outputs": [{"name": "input_ids", "dataType": "INT64", "dims": [1, -1]},
                     {"name": "attention_mask", "dataType": "INT64", "dims": [1, -1]},
                     {"name": "prompt", "dataType": "STRING", "dims": [1]}]},
        # Inputs and outputs omitted: read from the ONNX file.
        {"name": "embedding", "kind": "onnx", "artifact": a["embedding"], "maxBatchSize": 8,
         "dynamicBatching": {"preferredBatchSizes": [4, 8], "maxQueueDelayMicroseconds": 500},
         "instanceGroups": [{"kind": "GPU", "count": 2, "gpus": [0]}]},
        {"name": "rag", "kind": "ensemble",
         "inputs": [{"name": "query", "dataType": "STRING", "dims": [1]}],
         "outputs": [{"name": "query_embedding", "dataType": "FP32", "dims": [-1, EMBED_DIM]},
                     {"name": "answer", "dataType": "STRING", "dims": [-1]}],
         "steps": [
             {"model": "tokenizer", "inputMap": {"text": "query"},
              "outputMap": {"input_ids": "ids", "attention_mask": "mask", "prompt": "prompt"}},
             {"model": "embedding", "inputMap": {"input_ids": "ids", "attention_mask": "mask"},
              "outputMap": {"embedding": "query_embedding"}},
             {"model": "llama-70b", "inputMap": {"text_input": "prompt"}, "outputMap": {"text_output": "answer"}},
         ]},
    ]


def rag_config(models: list[dict[str, Any]], base: str = "staging") -> dict[str, Any]:
    cfg = stack_config(base)
    set_key(cfg, NS + "serving.tensorParallelSize", 4)
    cfg[NS + "serving"]["triton"]["models"] = models
    return cfg


def objects_by_key(result) -> dict[str, Any]:
    return {r.inputs["key"]: r for r in [*result.of_type(OBJECT), *result.of_type(COPY)]}


def parse(pbtxt: str):
    return text_format.Parse(pbtxt, triton_model_config_module().ModelConfig())


# ---- the repository, held to Triton's protobuf ----------------------------------------------------------

def test_rag_repository_layout_protobuf_and_wiring(artifacts):
    result = synth_config(rag_config(rag_models(artifacts)))
    objects = objects_by_key(result)
    # Triton's layout: <model>/config.pbtxt and <model>/<version>/<file>; the ensemble's empty version
    # directory is a marker object (S3 has no directories).
    assert set(objects) == {PREFIX + k for k in (
        "llama-70b/config.pbtxt", "llama-70b/1/model.json",
        "tokenizer/config.pbtxt", "tokenizer/1/model.py",
        "embedding/config.pbtxt", "embedding/1/model.onnx",
        "rag/config.pbtxt", "rag/1/")}
    for key in objects:
        assert re.fullmatch(r"models/triton/[A-Za-z0-9_-]+/(config\.pbtxt|[1-9]\d*/([A-Za-z0-9_.-]+)?)", key), key

    pb = triton_model_config_module()
    configs = {key.split("/")[2]: parse(o.inputs["content"]) for key, o in objects.items()
               if key.endswith("/config.pbtxt")}
    assert set(configs) == {"llama-70b", "tokenizer", "embedding", "rag"}
    for name, c in configs.items():
        assert c.name == name

    emb = configs["embedding"]
    assert emb.backend == "onnxruntime" and emb.max_batch_size == 8
    # The tensors come from the ONNX file itself (read here independently), minus the batch dimension.
    graph = onnx.load(artifacts["embedding"]).graph
    file_inputs = [i.name for i in graph.input if i.name not in {x.name for x in graph.initializer}]
    assert [i.name for i in emb.input] == file_inputs == ["input_ids", "attention_mask"]
    assert [(o.name, pb.DataType.Name(o.data_type), list(o.dims)) for o in emb.output] == \
        [("embedding", "TYPE_FP32", [EMBED_DIM])]
    assert [(g.count, g.kind, list(g.gpus)) for g in emb.instance_group] == \
        [(2, pb.ModelInstanceGroup.KIND_GPU, [0])]
    assert list(emb.dynamic_batching.preferred_batch_size) == [4, 8]
    assert emb.dynamic_batching.max_queue_delay_microseconds == 500
    assert emb.version_policy.latest.num_versions == 1

    tok = configs["tokenizer"]
    assert tok.backend == "python" and tok.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    assert tok.parameters["max_len"].string_value == "256"

    rag = configs["rag"]
    assert rag.platform == "ensemble" and not rag.instance_group
    assert [s.model_name for s in rag.ensemble_scheduling.step] == ["tokenizer", "embedding", "llama-70b"]
    # The wiring as Triton reads it: every mapped tensor exists on the step model with the producer's type.
    vllm_inputs = {"text_input": "TYPE_STRING", "stream": "TYPE_BOOL", "sampling_parameters": "TYPE_STRING",
                   "exclude_input_in_output": "TYPE_BOOL"}
    io = {name: ({t.name: pb.DataType.Name(t.data_type) for t in c.input},
                 {t.name: pb.DataType.Name(t.data_type) for t in c.output}) for name, c in configs.items()}
    io["llama-70b"] = (vllm_inputs, {"text_output": "TYPE_STRING"})
    types = {t.name: pb.DataType.Name(t.data_type) for t in rag.input}
    for step in rag.ensemble_scheduling.step:
        inputs, outputs = io[step.model_name]
        for model_input, tensor in step.input_map.items():
            assert inputs[model_input] == types[tensor], (step.model_name, model_input)
        for model_output, tensor in step.output_map.items():
            types[tensor] = outputs[model_output]
    assert {t.name: pb.DataType.Name(t.data_type) for t in rag.output} == \
        {k: types[k] for k in ("query_embedding", "answer")}

    # Local artifacts are uploaded as files; plan.json names each file with its content hash.
    assert objects[PREFIX + "embedding/1/model.onnx"].inputs["source"].path == artifacts["embedding"]
    plan = json.loads(plan_json(result))
    uploads = {r["inputs"]["key"]: r["inputs"]["source"] for r in plan["resources"]
               if r["type"] == OBJECT and "source" in r["inputs"]}
    import hashlib
    assert uploads[PREFIX + "tokenizer/1/model.py"] == {
        "fileAsset": artifacts["tokenizer"], "sha256": hashlib.sha256(TOKENIZER_PY.encode()).hexdigest()}

    # Write order: artifacts before their config, step configs before the ensemble's, all before Triton.
    urn = {k: o.urn for k, o in objects.items()}
    assert urn[PREFIX + "embedding/1/model.onnx"] in objects[PREFIX + "embedding/config.pbtxt"].dependencies
    for step_model in ("tokenizer", "embedding"):
        assert urn[f"{PREFIX}{step_model}/config.pbtxt"] in objects[PREFIX + "rag/config.pbtxt"].dependencies
    assert set(urn.values()) <= set(result.one("kubernetes:apps/v1:Deployment").dependencies)

    models = {m["name"]: m for m in result.outputs["tritonModels"]}
    assert models["rag"]["endpoint"] == "/v2/models/rag/infer"
    assert models["llama-70b"]["endpoint"] == "/v2/models/llama-70b/generate"
    assert models["embedding"]["gpus"] == [0] and models["tokenizer"]["gpus"] == []


def test_onnx_inputs_declared_and_matching_the_file_are_accepted(artifacts):
    models = rag_models(artifacts)
    models[1]["inputs"] = [{"name": "input_ids", "dataType": "INT64", "dims": [-1]},
                           {"name": "attention_mask", "dataType": "TYPE_INT64", "dims": [16]}]
    models[1]["outputs"] = [{"name": "embedding", "dataType": "FP32", "dims": [EMBED_DIM]}]
    c = parse(objects_by_key(synth_config(rag_config(models)))[PREFIX + "embedding/config.pbtxt"].inputs["content"])
    assert [list(i.dims) for i in c.input] == [[-1], [16]]  # a config may fix what the file leaves variable


def test_gpu_share_is_planned_for_the_whole_server(artifacts):
    """Unset gpuMemoryUtilization: the engine gets the largest share that leaves room on every GPU
    for the other models' instances and one in-place reload; the engine's model.json says so."""
    models = rag_models(artifacts)
    models[1]["gpuMemoryGib"] = 3.0
    models[1]["instanceGroups"] = [{"kind": "GPU", "count": 1}]  # one instance on every GPU of the pod
    cfg = rag_config(models)
    del cfg[NS + "serving"]["gpuMemoryUtilization"]
    result = synth_config(cfg)
    engine = json.loads(objects_by_key(result)[PREFIX + "llama-70b/1/model.json"].inputs["content"])
    # p4de GPU: 80 GiB; 3 GiB embedding + 3 GiB to reload it -> (80 - 6) / 80 = 0.925 -> 0.92 (the default cap)
    assert engine["gpu_memory_utilization"] == 0.92
    models[1]["gpuMemoryGib"] = 5.0
    engine = json.loads(objects_by_key(synth_config(cfg))[PREFIX + "llama-70b/1/model.json"].inputs["content"])
    assert engine["gpu_memory_utilization"] == 0.87  # (80 - 10) / 80 = 0.875, rounded down
    result = synth_config(cfg)
    shares = {m["name"]: m for m in result.outputs["tritonModels"]}
    assert shares["llama-70b"]["gpuShare"] == 0.87 and shares["embedding"]["gpus"] == [0, 1, 2, 3]
    assert shares["embedding"]["gpuMemoryGibPerGpu"] == 5.0


def test_two_versions_served_for_ab(artifacts, tmp_path):
    models = rag_models(artifacts)
    v2 = build_embedding(tmp_path / "embed-v2.onnx")
    models[1]["versions"] = [1, {"version": 2, "artifact": str(v2)}]
    models[1]["versionPolicy"] = {"specific": [1, 2]}
    result = synth_config(rag_config(models))
    objects = objects_by_key(result)
    assert objects[PREFIX + "embedding/2/model.onnx"].inputs["source"].path == str(v2)
    assert objects[PREFIX + "embedding/1/model.onnx"].inputs["source"].path == artifacts["embedding"]
    c = parse(objects[PREFIX + "embedding/config.pbtxt"].inputs["content"])
    assert list(c.version_policy.specific.versions) == [1, 2]
    emb = next(m for m in result.outputs["tritonModels"] if m["name"] == "embedding")
    assert emb["versionEndpoints"] == ["/v2/models/embedding/versions/1/infer", "/v2/models/embedding/versions/2/infer"]


# ---- bad repositories: one line naming the model and the key, nothing written ---------------------------

def _refused(tmp_path, capfd, cfg) -> str:
    path = write_stack_file(tmp_path, cfg)
    out = tmp_path / "out"
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out)])
    assert rc == cli.EXIT_CONFIG, err
    assert not out.exists()
    return assert_one_line_error(err)


def _step(models, i):
    return models[2]["steps"][i]


def _add_cycle(models):
    """rewriter(query, draft=answer) -> text -> tokenizer -> prompt -> llama-70b -> answer: a loop."""
    models.append({"name": "rewriter", "kind": "python", "artifact": models[0]["artifact"],
                   "inputs": [{"name": "query", "dataType": "STRING", "dims": [1]},
                              {"name": "draft", "dataType": "STRING", "dims": [-1]}],
                   "outputs": [{"name": "text", "dataType": "STRING", "dims": [1]}]})
    _step(models, 0)["inputMap"] = {"text": "rewritten"}
    models[2]["steps"].append({"model": "rewriter", "inputMap": {"query": "query", "draft": "answer"},
                               "outputMap": {"text": "rewritten"}})


BAD = {
    "missing-step-model": (lambda m, a: _step(m, 1).update(model="embeder"),
                           "serving.triton.models.2.steps.1.model", ("'rag'", "'embeder'", "embedding")),
    "mapped-tensor-missing": (lambda m, a: _step(m, 1).update(inputMap={"input_idz": "ids", "attention_mask": "mask"}),
                              "serving.triton.models.2.steps.1.inputMap.input_idz",
                              ("'rag'", "'input_idz'", "'embedding'")),
    "mapped-tensor-other-type": (lambda m, a: m[0]["outputs"][0].update(dataType="INT32"),
                                 "serving.triton.models.2.steps.1.inputMap.input_ids",
                                 ("'rag'", "'ids'", "INT32", "INT64")),
    "mapped-tensor-other-shape": (lambda m, a: m[0]["outputs"][0].update(dims=[1, 2, -1]),
                                  "serving.triton.models.2.steps.1.inputMap.input_ids", ("'ids'", "shape")),
    "steps-in-a-cycle": (lambda m, a: _add_cycle(m), "serving.triton.models.2.steps.", ("'rag'", "cycle", "step 3")),
    "onnx-input-the-file-lacks": (lambda m, a: m[1].update(inputs=[
        {"name": "input_ids", "dataType": "INT64", "dims": [-1]},
        {"name": "token_type_ids", "dataType": "INT64", "dims": [-1]}]),
        "serving.triton.models.1.inputs.1.name", ("'embedding'", "'token_type_ids'", "embed.onnx", "'attention_mask'")),
    "onnx-input-other-type": (lambda m, a: m[1].update(inputs=[
        {"name": "input_ids", "dataType": "INT32", "dims": [-1]},
        {"name": "attention_mask", "dataType": "INT64", "dims": [-1]}]),
        "serving.triton.models.1.inputs.0.dataType", ("'embedding'", "INT32", "INT64")),
    "policy-names-unshipped-version": (lambda m, a: m[1].update(versionPolicy={"specific": [2]}),
                                       "serving.triton.models.1.versionPolicy.specific",
                                       ("'embedding'", "version 2", "not shipped")),
    "models-do-not-fit-together": (lambda m, a: m[1].update(gpuMemoryGib=25, instanceGroups=[{"kind": "GPU"}]),
                                   "serving.triton.models.1.instanceGroups",
                                   ("llama-70b", "embedding 25 GiB", "80 GiB", "GPU 0")),
    "gpu-outside-the-pod": (lambda m, a: m[1].update(instanceGroups=[{"kind": "GPU", "gpus": [4]}]),
                            "serving.triton.models.1.instanceGroups.0.gpus", ("'embedding'", "GPU 4", "4 GPU")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_repository_refused_in_one_line(case, artifacts, tmp_path, capfd):
    mutate, key, mentions = BAD[case]
    models = rag_models(artifacts)
    mutate(models, artifacts)
    line = _refused(tmp_path, capfd, rag_config(models))
    assert line.startswith(f"error: {NS}{key}"), line
    for text in mentions:
        assert text in line, f"{text!r} missing from: {line}"


def test_ensembles_including_each_other_refused(artifacts, tmp_path, capfd):
    models = rag_models(artifacts)
    io = {"inputs": [{"name": "q", "dataType": "STRING", "dims": [1]}],
          "outputs": [{"name": "a", "dataType": "STRING", "dims": [-1]}]}
    models += [{"name": "outer", "kind": "ensemble", **io,
                "steps": [{"model": "inner", "inputMap": {"q": "q"}, "outputMap": {"a": "a"}}]},
               {"name": "inner", "kind": "ensemble", **io,
                "steps": [{"model": "outer", "inputMap": {"q": "q"}, "outputMap": {"a": "a"}}]}]
    line = _refused(tmp_path, capfd, rag_config(models))
    assert re.match(rf"error: {NS}serving\.triton\.models\.[34]\.steps: ensembles include each other in a cycle: "
                    r"(outer -> inner -> outer|inner -> outer -> inner)", line), line


def test_configured_utilization_that_leaves_no_room_refused(artifacts, tmp_path, capfd):
    models = rag_models(artifacts)
    models[1]["gpuMemoryGib"] = 5.0
    cfg = rag_config(models)  # staging sets gpuMemoryUtilization 0.92 explicitly
    line = _refused(tmp_path, capfd, cfg)
    assert line.startswith(f"error: {NS}serving.gpuMemoryUtilization: 0.92"), line
    assert "gpuMemoryUtilization <= 0.75" in line  # 2 instances x 5 GiB + 10 GiB reload room on GPU 0


def test_extra_models_refused_on_one_model_stacks(artifacts, tmp_path, capfd):
    for other in ("vllm", "nim"):
        cfg = rag_config(rag_models(artifacts))
        set_key(cfg, NS + "serving.stack", other)
        line = _refused(tmp_path, capfd, cfg)
        assert line.startswith(f"error: {NS}serving.triton.models: 3 model(s)"), line
        assert f"serving.stack is {other}, which serves one model" in line


def test_local_onnx_without_the_onnx_package_is_one_line(artifacts, tmp_path, capfd, monkeypatch):
    import sys

    from servingstack.config import triton_models
    triton_models._onnx_cached.cache_clear()
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    line = _refused(tmp_path, capfd, rag_config(rag_models(artifacts)))
    assert line.startswith(f"error: {NS}serving.triton.models.1.artifact: "), line
    assert "pip install 'servingstack[onnx]'" in line


def test_s3_artifact_on_gpu_needs_declared_memory(artifacts, tmp_path, capfd):
    models = rag_models(artifacts)
    models[1].update(artifact="s3://model-store/artifacts/embed.onnx",
                     inputs=[{"name": "input_ids", "dataType": "INT64", "dims": [-1]},
                             {"name": "attention_mask", "dataType": "INT64", "dims": [-1]}],
                     outputs=[{"name": "embedding", "dataType": "FP32", "dims": [EMBED_DIM]}])
    line = _refused(tmp_path, capfd, rag_config(models))
    assert line.startswith(f"error: {NS}serving.triton.models.1.gpuMemoryGib: "), line
    assert "s3://" in line


# ---- the component, used directly --------------------------------------------------------------------

def test_triton_server_component_checks_its_models(artifacts):
    import pulumi

    from servingstack import TritonServer
    from servingstack.arguments import ArgumentError
    from servingstack.testing import run

    def program(models):
        def body():
            server = TritonServer("triton", {
                "namespace": "llm", "model": "meta-llama/Llama-3.1-70B-Instruct", "node_selector": {},
                "tensor_parallel_size": 4, "instance_type": "p4de.24xlarge", "bucket_name": "my-models",
                "model_name": "llama-70b", "models": models, "allow_default_provider": True})
            pulumi.export("endpoint", server.endpoint)
        return body

    from servingstack.config.fields import snake_case
    models = [{snake_case(k): v for k, v in m.items()} for m in rag_models(artifacts)]  # either spelling
    result = run(program(models))
    keys = {r.inputs["key"] for r in result.of_type(OBJECT)}
    assert "models/triton/embedding/1/model.onnx" in keys and "models/triton/rag/config.pbtxt" in keys
    bad = json.loads(json.dumps(models))
    bad[2]["steps"][1]["model"] = "embeder"
    with pytest.raises(ArgumentError, match=r"^TritonServer 'triton': args\.models: 2\.steps\.1\.model: .*'embeder'"):
        run(program(bad))
    heavy = json.loads(json.dumps(models))
    heavy[1]["gpu_memory_gib"] = 5.0  # 2 instances on GPU 0: 10 GiB + 10 GiB reload room
    with pytest.raises(ArgumentError, match=r"^TritonServer 'triton': args\.gpu_memory_utilization: 0\.92 gives .*"
                                            r"use gpu_memory_utilization <= 0\.75$"):
        run(program(heavy))


# ---- the example stack and the stacks that do not opt in --------------------------------------------------

def test_staging_rag_serves_the_source_documents_repository():
    result = synth("staging-rag")
    objects = objects_by_key(result)
    copies = {r.inputs["key"]: r.inputs["source"] for r in result.of_type(COPY)}
    bucket = result.outputs["modelStoreBucket"]
    assert copies[PREFIX + "embedding-model/1/model.onnx"] == f"{bucket}/artifacts/rag/bge-base-en-v1.5/model.onnx"
    assert copies[PREFIX + "reranker/1/model.pt"] == f"{bucket}/artifacts/rag/bge-reranker-base/model.pt"
    assert not [r for r in result.of_type(OBJECT) if "source" in r.inputs]  # no local binaries shipped
    configs = {k.split("/")[2]: parse(o.inputs["content"]) for k, o in objects.items() if k.endswith("config.pbtxt")}
    assert configs["llama-70b"].backend == "vllm" and configs["embedding-model"].backend == "onnxruntime"
    assert configs["reranker"].backend == "pytorch"
    assert {n for n, c in configs.items() if c.platform == "ensemble"} == {"embed", "rerank"}
    from servingstack.tools.output import summary
    text = summary(result)
    for name, path in (("llama-70b", "/v2/models/llama-70b/generate"), ("embed", "/v2/models/embed/infer"),
                       ("reranker", "/v2/models/reranker/infer"), ("embedding-model", "/v2/models/embedding-model/infer")):
        assert re.search(rf"{re.escape(name)} \(.*\) {re.escape(path)} — ", text), name
    assert re.search(r"llama-70b .* 73\.6 GiB \(92\.0%\) on each of GPUs 0-3", text)
    assert re.search(r"reranker .* 3 GiB \(3\.8%\) on GPU 1", text)


@pytest.mark.parametrize("name", [n for n in STACK_NAMES if n != "staging-rag"])
def test_stacks_that_do_not_opt_in_register_the_same(name):
    """An explicit empty model list is byte-for-byte the stack without it (plan.json)."""
    cfg = stack_config(name)
    cfg.setdefault(NS + "serving", {}).setdefault("triton", {})["models"] = []
    assert plan_json(synth_config(cfg, name=name)) == plan_json(synth(name))
    assert "tritonModels" not in synth(name).outputs


def test_repository_identity_changes_with_a_version_a_file_or_the_policy(artifacts, tmp_path):
    """What a content hash of the whole repository covers: a new version, a changed local file and a
    moved policy each change it; the same repository gives the same identity."""
    from servingstack.serving.triton_repository import models_identity

    def ident(models):
        return models_identity({"model": "meta-llama/Llama-3.1-70B-Instruct", "model_name": "llama-70b",
                                "models": models})

    base = ident(rag_models(artifacts))
    assert base == ident(rag_models(artifacts))
    assert base["embedding/1/model.onnx"].startswith("file sha256:")
    assert base["rag/1/"] == ""
    two = rag_models(artifacts)
    two[1]["versions"] = [1, 2]
    assert set(ident(two)) - set(base) == {"embedding/2/model.onnx"}
    moved = rag_models(artifacts)
    moved[1]["versionPolicy"] = {"latest": 1}
    moved[1]["versions"] = [1, 2]
    moved_specific = rag_models(artifacts)
    moved_specific[1].update(versions=[1, 2], versionPolicy={"specific": [2]})
    assert ident(moved)["embedding/config.pbtxt"] != ident(moved_specific)["embedding/config.pbtxt"]
    Path(artifacts["tokenizer"]).write_text(TOKENIZER_PY + "\n# changed\n")
    assert ident(rag_models(artifacts))["tokenizer/1/model.py"] != base["tokenizer/1/model.py"]
    assert ident([]) == {}


def test_a_version_change_writes_the_version_then_the_config_and_leaves_the_pods(artifacts, tmp_path):
    """Adding version 2 and moving the policy to it changes the repository objects only: the new
    version's artifact, then the model's config.pbtxt written after it. The Deployment is unchanged
    (no pod restarts); the running Triton pods pick the change up in poll mode (README: Versions and A/B)."""
    before = synth_config(rag_config(rag_models(artifacts)))
    models = rag_models(artifacts)
    models[1].update(versions=[1, {"version": 2, "artifact": str(build_embedding(tmp_path / "v2.onnx"))}],
                     versionPolicy={"specific": [2]})
    after = synth_config(rag_config(models))
    old = {r["urn"]: r["inputs"] for r in json.loads(plan_json(before))["resources"]}  # files by path + sha256
    new = {r["urn"]: r["inputs"] for r in json.loads(plan_json(after))["resources"]}
    added = set(new) - set(old)
    changed = {u for u in set(new) & set(old) if new[u] != old[u]}
    assert {new[u]["key"] for u in added} == {PREFIX + "embedding/2/model.onnx"}
    assert {new[u].get("key") for u in changed} == {PREFIX + "embedding/config.pbtxt"}
    assert not set(old) - set(new)
    config = objects_by_key(after)[PREFIX + "embedding/config.pbtxt"]
    assert objects_by_key(after)[PREFIX + "embedding/2/model.onnx"].urn in config.dependencies
    assert list(parse(config.inputs["content"]).version_policy.specific.versions) == [2]


# ---- every kind and policy, as Triton's protobuf reads it; the ensemble's own tensors --------------------

def test_every_kind_and_version_policy_parses_with_tritons_protobuf(artifacts):
    """TorchScript and TensorRT models from s3:// artifacts (tensors and memory declared), with `all`
    and `latest: N` policies: backend, default file name, policy and batching as Triton reads them."""
    io = {"inputs": [{"name": "INPUT__0", "dataType": "FP16", "dims": [3, 224, 224]}],
          "outputs": [{"name": "OUTPUT__0", "dataType": "FP16", "dims": [1000]}]}
    models = rag_models(artifacts) + [
        {"name": "classifier-pt", "kind": "pytorch", "artifact": "s3://model-store/artifacts/cls/model.pt",
         "versions": [1, 2, 3], "versionPolicy": {"latest": 2}, "maxBatchSize": 16, "gpuMemoryGib": 1.0,
         "instanceGroups": [{"kind": "GPU", "count": 1, "gpus": [2]}], **io},
        {"name": "classifier-trt", "kind": "tensorrt", "artifact": "s3://other-bucket/engines/cls.plan",
         "versions": [1, 2], "versionPolicy": {"all": True}, "maxBatchSize": 16, "gpuMemoryGib": 0.5,
         "dynamicBatching": {"preferredBatchSizes": [16]},
         "instanceGroups": [{"kind": "GPU", "count": 2, "gpus": [3]}], **io},
    ]
    result = synth_config(rag_config(models))
    objects = objects_by_key(result)
    copies = {r.inputs["key"]: r.inputs["source"] for r in result.of_type(COPY)}
    bucket = result.outputs["modelStoreBucket"]
    assert {k: v for k, v in copies.items() if "classifier" in k} == {
        **{f"{PREFIX}classifier-pt/{v}/model.pt": f"{bucket}/artifacts/cls/model.pt" for v in (1, 2, 3)},
        **{f"{PREFIX}classifier-trt/{v}/model.plan": "other-bucket/engines/cls.plan" for v in (1, 2)}}
    pb = triton_model_config_module()
    pt = parse(objects[PREFIX + "classifier-pt/config.pbtxt"].inputs["content"])
    trt = parse(objects[PREFIX + "classifier-trt/config.pbtxt"].inputs["content"])
    assert (pt.backend, pt.version_policy.WhichOneof("policy_choice"), pt.version_policy.latest.num_versions) == \
        ("pytorch", "latest", 2)
    assert (trt.backend, trt.version_policy.WhichOneof("policy_choice")) == ("tensorrt", "all")
    assert [(pb.DataType.Name(t.data_type), list(t.dims)) for t in trt.input] == [("TYPE_FP16", [3, 224, 224])]
    assert list(trt.dynamic_batching.preferred_batch_size) == [16] and trt.max_batch_size == 16
    assert [(g.count, list(g.gpus)) for g in trt.instance_group] == [(2, [3])]
    served = {m["name"]: m for m in result.outputs["tritonModels"]}
    assert served["classifier-pt"]["versions"] == [2, 3] and served["classifier-trt"]["versions"] == [1, 2]
    # Two served versions x two instances x 0.5 GiB on GPU 3 (and as much again to reload it in place).
    assert served["classifier-trt"]["gpus"] == [3] and served["classifier-trt"]["gpuMemoryGibPerGpu"] == 2.0


ENSEMBLE_DATAFLOW = {
    "ensemble-input-unused": (
        lambda e: e["inputs"].append({"name": "unused", "dataType": "STRING", "dims": [1]}),
        "serving.triton.models.2.inputs", ("'rag'", "'unused'", "not used")),
    "ensemble-output-not-written": (
        lambda e: e["outputs"].append({"name": "sources", "dataType": "STRING", "dims": [-1]}),
        "serving.triton.models.2.outputs", ("'rag'", "'sources'", "not written")),
    "step-reads-an-unproduced-tensor": (
        lambda e: e["steps"][2].update(inputMap={"text_input": "rewritten_prompt"}),
        "serving.triton.models.2.steps.2.inputMap", ("'rag'", "'rewritten_prompt'", "neither")),
}


@pytest.mark.parametrize("case", sorted(ENSEMBLE_DATAFLOW))
def test_ensemble_own_tensors_produced_and_consumed(case, artifacts, tmp_path, capfd):
    mutate, key, mentions = ENSEMBLE_DATAFLOW[case]
    models = rag_models(artifacts)
    mutate(models[2])
    line = _refused(tmp_path, capfd, rag_config(models))
    assert line.startswith(f"error: {NS}{key}"), line
    for text in mentions:
        assert text in line, f"{text!r} missing from: {line}"
