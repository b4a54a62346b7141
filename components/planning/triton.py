"""Pure: a Triton model repository as data, and the checks Triton itself would make when it loads it.

Nothing here imports Pulumi or pydantic. The config layer (config/triton_models.py) builds these
records from `serving.triton.models` (reading local ONNX files for their inputs and outputs); the
serving layer renders them as config.pbtxt files (serving/triton_models.py); planning/triton_memory.py
plans the GPUs. Every refusal is a RepositoryError naming the config key and the model.

The ensemble rules mirror Triton core's own validation (triton-inference-server/core,
src/model_config_utils.cc ValidateEnsembleSchedulingConfig and src/ensemble_scheduler/ensemble_utils.cc
ValidateEnsembleConfig, read 2026-12):
  * every step names a model in the repository, maps at least one input and one output;
  * every input a step maps exists on its model, every non-optional model input is mapped exactly once;
  * every output a step maps exists on its model, and an ensemble tensor is produced only once;
  * the tensors one ensemble tensor connects have the same data type and compatible shapes (equal
    rank, each dimension equal or -1; a batching model's shape is [-1] + dims);
  * data flows: every ensemble input is used, every ensemble output is written, every intermediate
    tensor is produced and consumed (a cycle between steps leaves its tensors unproduced);
  * a batching ensemble's max_batch_size is at most each batching step model's;
  * ensembles that include each other form no cycle (Triton's repository manager refuses a circular
    dependency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .sizing import FitError

#: Triton's model-config data types (DataType in model_config.proto, without the TYPE_ prefix).
DATA_TYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
              "FP64", "STRING", "BF16")

#: kind -> (config.pbtxt field, value): the backend (or platform) that runs the model.
BACKENDS = {
    "onnx": ("backend", "onnxruntime"),
    "pytorch": ("backend", "pytorch"),
    "tensorrt": ("backend", "tensorrt"),
    "python": ("backend", "python"),
    "ensemble": ("platform", "ensemble"),
    "vllm": ("backend", "vllm"),
}

#: kind -> the file name the backend looks for in a version directory (default_model_filename).
ARTIFACT_FILES = {"onnx": "model.onnx", "pytorch": "model.pt", "tensorrt": "model.plan", "python": "model.py"}


class RepositoryError(FitError):
    """A model repository Triton would refuse, or that does not fit its GPUs. `key` is the config key
    path to change (e.g. serving.triton.models.3.steps.0.model)."""


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str
    """One of DATA_TYPES."""
    dims: tuple[int, ...]
    """Without the batch dimension when the model batches (max_batch_size > 0); -1 is variable."""
    optional: bool = False

    def full_dims(self, batching: bool) -> tuple[int, ...]:
        return ((-1,) if batching else ()) + self.dims

    def describe(self) -> str:
        return f"{self.data_type} {list(self.dims)}"


@dataclass(frozen=True)
class InstanceGroup:
    kind: str
    """GPU, CPU or MODEL (the vLLM engine: one instance over all the pod's GPUs)."""
    count: int = 1
    gpus: Optional[tuple[int, ...]] = None
    """GPU indexes inside the pod; None: `count` instances on every GPU of the pod (Triton's rule)."""


@dataclass(frozen=True)
class Step:
    model: str
    version: int = -1
    input_map: tuple[tuple[str, str], ...] = ()
    """(model input, ensemble tensor) pairs."""
    output_map: tuple[tuple[str, str], ...] = ()
    """(model output, ensemble tensor) pairs."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"
    """latest, all or specific."""
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def served(self, shipped: tuple[int, ...]) -> tuple[int, ...]:
        ordered = tuple(sorted(shipped))
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return tuple(v for v in ordered if v in self.versions)
        return ordered[-self.num_versions:]


@dataclass(frozen=True)
class RepoModel:
    name: str
    kind: str
    """onnx, pytorch, tensorrt, python, ensemble, or vllm (the LLM)."""
    key: str
    """Config key path of the model (for errors), e.g. serving.triton.models.2."""
    inputs: tuple[Tensor, ...] = ()
    outputs: tuple[Tensor, ...] = ()
    max_batch_size: int = 0
    versions: tuple[int, ...] = (1,)
    """Version directories shipped."""
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    instance_groups: tuple[InstanceGroup, ...] = ()
    steps: tuple[Step, ...] = ()
    decoupled: bool = False
    gpu_memory_gib: Optional[float] = None
    """GPU memory of ONE instance of ONE version, GiB (declared, or estimated from the artifact)."""
    gpu_memory_source: str = ""
    """How gpu_memory_gib was found: "declared", "estimated from <n> MiB artifact"."""
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_microseconds: Optional[int] = None
    """Set when dynamic batching is on."""
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def served_versions(self) -> tuple[int, ...]:
        return self.policy.served(self.versions)

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 0

    def tensor(self, name: str, outputs: bool) -> Optional[Tensor]:
        return next((t for t in (self.outputs if outputs else self.inputs) if t.name == name), None)


# The vLLM backend's inputs and outputs, as its auto_complete_config sets them (triton-inference-server/
# vllm_backend v24.08 src/model.py; the same in 24.08's bundled backend): batching off, decoupled.
VLLM_INPUTS = (
    Tensor("text_input", "STRING", (1,)),
    Tensor("stream", "BOOL", (1,), optional=True),
    Tensor("sampling_parameters", "STRING", (1,), optional=True),
    Tensor("exclude_input_in_output", "BOOL", (1,), optional=True),
)
VLLM_OUTPUTS = (Tensor("text_output", "STRING", (-1,)),)


def vllm_model(name: str, key: str) -> RepoModel:
    """The LLM as the vLLM backend completes its config (one KIND_MODEL instance over the pod's GPUs)."""
    return RepoModel(name, "vllm", key, VLLM_INPUTS, VLLM_OUTPUTS, 0, (1,), VersionPolicy(),
                     (InstanceGroup("MODEL"),), decoupled=True)


def dims_compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Triton's CompareDimsWithWildcard: equal rank, each dimension equal or -1 on either side."""
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def check_repository(models: list[RepoModel]) -> None:
    """Every check Triton makes on the repository as a whole: unique names, shipped versions,
    ensembles. Raises RepositoryError naming the key and the model."""
    names: dict[str, RepoModel] = {}
    for m in models:
        if m.name in names:
            raise RepositoryError(f"{m.key}.name", f"{m.name!r} is also the name of {names[m.name].key} — every "
                                                   "model in the repository needs its own name (its directory)")
        names[m.name] = m
        check_versions(m)
    for m in models:
        if m.kind == "ensemble":
            check_ensemble(m, names)
    _check_no_ensemble_cycle(models, names)


def check_versions(m: RepoModel) -> None:
    if m.policy.kind == "specific":
        missing = [v for v in m.policy.versions if v not in m.versions]
        if missing:
            raise RepositoryError(f"{m.key}.versionPolicy.specific", (
                f"model {m.name!r} serves version {missing[0]}, which is not shipped (versions "
                f"{', '.join(map(str, sorted(m.versions)))}) — add version {missing[0]} to the model's versions "
                f"with its artifact, or serve one of the shipped versions"))
    if not m.served_versions:
        raise RepositoryError(f"{m.key}.versionPolicy", f"model {m.name!r} serves no version — ship a version")


def check_ensemble(e: RepoModel, models: dict[str, RepoModel]) -> None:
    """One ensemble's steps and tensor wiring, as Triton checks them when it loads the ensemble."""
    tensors: dict[str, tuple[Tensor, bool, str]] = {}  # ensemble tensor -> (shape source, batching, from)
    produced: dict[str, int] = {}  # ensemble tensor -> step index that writes it
    for t in e.inputs:
        tensors[t.name] = (t, e.batching, f"ensemble {e.name!r} input")
    for t in e.outputs:
        tensors.setdefault(t.name, (t, e.batching, f"ensemble {e.name!r} output"))
    for i, step in enumerate(e.steps):
        at = f"{e.key}.steps.{i}"
        model = models.get(step.model)
        if model is None:
            known = ", ".join(sorted(n for n in models if n != e.name))
            raise RepositoryError(f"{at}.model", (f"ensemble {e.name!r} step {i} names model {step.model!r}, which "
                                                  f"is not in the repository — use one of {known}"))
        if model.name == e.name:
            raise RepositoryError(f"{at}.model", f"ensemble {e.name!r} step {i} names the ensemble itself (a cycle)")
        if step.version != -1 and step.version not in model.served_versions:
            raise RepositoryError(f"{at}.version", (
                f"ensemble {e.name!r} step {i} asks for version {step.version} of {model.name!r}, which serves "
                f"{', '.join(map(str, model.served_versions))} — use -1 (the served one) or a served version"))
        if model.batching and model.max_batch_size < e.max_batch_size:
            raise RepositoryError(f"{e.key}.maxBatchSize", (
                f"ensemble {e.name!r} allows batches of {e.max_batch_size} but step {i} model {model.name!r} only "
                f"{model.max_batch_size} — use maxBatchSize <= {model.max_batch_size}"))
        mapped: dict[str, str] = {}
        for model_input, ensemble_tensor in step.input_map:
            t = model.tensor(model_input, outputs=False)
            if t is None:
                raise RepositoryError(f"{at}.inputMap.{model_input}", (
                    f"ensemble {e.name!r} step {i} maps input {model_input!r}, which model {model.name!r} does not "
                    f"have — its inputs are {_names(model.inputs)}"))
            if model_input in mapped:
                raise RepositoryError(f"{at}.inputMap.{model_input}", (
                    f"ensemble {e.name!r} step {i} maps input {model_input!r} of {model.name!r} twice"))
            mapped[model_input] = ensemble_tensor
            _connect(e, at, f"{at}.inputMap.{model_input}", tensors, ensemble_tensor, t, model)
        for t in model.inputs:
            if t.name not in mapped and not t.optional:
                raise RepositoryError(f"{at}.inputMap", (
                    f"ensemble {e.name!r} step {i} leaves input {t.name!r} ({t.describe()}) of model {model.name!r} "
                    "unmapped — map it to an ensemble tensor"))
        if not step.input_map or not step.output_map:
            raise RepositoryError(f"{at}.{'inputMap' if not step.input_map else 'outputMap'}", (
                f"ensemble {e.name!r} step {i} maps no {'inputs' if not step.input_map else 'outputs'} — Triton "
                "requires at least one"))
        for model_output, ensemble_tensor in step.output_map:
            t = model.tensor(model_output, outputs=True)
            if t is None:
                raise RepositoryError(f"{at}.outputMap.{model_output}", (
                    f"ensemble {e.name!r} step {i} maps output {model_output!r}, which model {model.name!r} does "
                    f"not have — its outputs are {_names(model.outputs)}"))
            if ensemble_tensor in produced or ensemble_tensor in {x.name for x in e.inputs}:
                where = (f"step {produced[ensemble_tensor]}" if ensemble_tensor in produced else "the ensemble's input")
                raise RepositoryError(f"{at}.outputMap.{model_output}", (
                    f"ensemble {e.name!r} step {i} writes tensor {ensemble_tensor!r}, already written by {where} — "
                    "every ensemble tensor has one producer"))
            produced[ensemble_tensor] = i
            _connect(e, at, f"{at}.outputMap.{model_output}", tensors, ensemble_tensor, t, model)
    _check_dataflow(e)


def _connect(e: RepoModel, at: str, key: str, tensors: dict[str, tuple[Tensor, bool, str]], name: str,
             t: Tensor, model: RepoModel) -> None:
    """Bind ensemble tensor `name` to a model tensor: the same type and a compatible shape as
    everything else bound to it (Triton's ValidateTensorConsistency)."""
    here = f"{model.name!r} {t.name!r}"
    if name not in tensors:
        tensors[name] = (t, model.batching, here)
        return
    other, other_batching, source = tensors[name]
    if other.data_type != t.data_type:
        raise RepositoryError(key, (
            f"ensemble {e.name!r} tensor {name!r} is {other.data_type} from {source} but {t.data_type} for {here} — "
            "the tensors an ensemble connects must have the same data type"))
    if not (dims_compatible(other.dims, t.dims)
            or dims_compatible(other.full_dims(other_batching), t.full_dims(model.batching))):
        raise RepositoryError(key, (
            f"ensemble {e.name!r} tensor {name!r} has shape {list(other.full_dims(other_batching))} from {source} "
            f"but {list(t.full_dims(model.batching))} for {here} — shapes must match (-1 matches any size)"))


def _check_dataflow(e: RepoModel) -> None:
    """Tensors become ready from the ensemble's inputs through the steps (Triton's data-flow check):
    a step runs once all its inputs are ready. What never becomes ready is unproduced or in a cycle."""
    ready = {t.name for t in e.inputs}
    consumed = {ens for s in e.steps for _, ens in s.input_map}
    for t in e.inputs:
        if t.name not in consumed:
            raise RepositoryError(f"{e.key}.inputs", f"ensemble {e.name!r} input {t.name!r} is not used by any step")
    done: set[int] = set()
    progress = True
    while progress:
        progress = False
        for i, s in enumerate(e.steps):
            if i not in done and all(ens in ready for _, ens in s.input_map):
                ready.update(ens for _, ens in s.output_map)
                done.add(i)
                progress = True
    stuck = [i for i in range(len(e.steps)) if i not in done]
    if stuck:
        writers = {ens: j for j, s in enumerate(e.steps) for _, ens in s.output_map}
        needs = {i: [writers[ens] for _, ens in e.steps[i].input_map if ens not in ready and ens in writers]
                 for i in stuck}
        loop = _cycle(needs)
        if loop:
            chain = " -> ".join(f"step {j} ({e.steps[j].model!r})" for j in loop)
            raise RepositoryError(f"{e.key}.steps.{loop[0]}.inputMap", (
                f"ensemble {e.name!r} steps wait for each other's outputs in a cycle: {chain} — no step of the "
                "cycle can ever run; break it"))
        i, missing = next((i, ens) for i in stuck for _, ens in e.steps[i].input_map
                          if ens not in ready and ens not in writers)
        raise RepositoryError(f"{e.key}.steps.{i}.inputMap", (
            f"ensemble {e.name!r} step {i} ({e.steps[i].model!r}) reads tensor {missing!r}, which is neither an "
            "ensemble input nor written by any step"))
    for t in e.outputs:
        if t.name not in ready:
            raise RepositoryError(f"{e.key}.outputs", (
                f"ensemble {e.name!r} output {t.name!r} is not written by any step — map a step output to it"))
    outputs = {t.name for t in e.outputs}
    for i, s in enumerate(e.steps):
        for model_output, ens in s.output_map:
            if ens not in outputs and ens not in consumed:
                raise RepositoryError(f"{e.key}.steps.{i}.outputMap.{model_output}", (
                    f"ensemble {e.name!r} tensor {ens!r} (step {i} output {model_output!r}) is unused — feed it to "
                    "a step or declare it an ensemble output (Triton refuses unused ensemble tensors)"))


def _cycle(needs: dict[int, list[int]]) -> list[int]:
    """A cycle in `needs` (node -> nodes it waits for) as [a, b, ..., a], or []."""
    state: dict[int, int] = {}
    path: list[int] = []

    def visit(n: int) -> list[int]:
        state[n] = 1
        path.append(n)
        for nxt in needs.get(n, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return []

    for n in sorted(needs):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return []


def _check_no_ensemble_cycle(models: list[RepoModel], names: dict[str, RepoModel]) -> None:
    graph = {m.name: [s.model for s in m.steps if s.model in names] for m in models if m.kind == "ensemble"}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for nxt in graph.get(n, []):
            if state.get(nxt) == 1:
                loop = path[path.index(nxt):] + [nxt] if nxt in path else [n, nxt]
                raise RepositoryError(f"{names[n].key}.steps", (
                    f"ensembles include each other in a cycle: {' -> '.join(loop)} — Triton refuses a circular "
                    "dependency; remove one of these steps"))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])


def _names(tensors: tuple[Tensor, ...]) -> str:
    return ", ".join(repr(t.name) for t in tensors) or "(none)"
