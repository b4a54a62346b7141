"""`serving.triton.models`: the models Triton serves beside the LLM, as typed config, and the
repository records (planning/triton.py) built from them.

Each entry is one model directory of the repository: `<name>/config.pbtxt` and one `<name>/<version>/`
directory per shipped version holding its artifact (model.onnx, model.pt, model.plan or model.py;
ensembles have none). The LLM (serving.model on the vLLM backend, named serving.triton.modelName) is
one more model of the same repository, and ensembles may use it as a step.
"""

from __future__ import annotations

import functools
import os
from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from ..planning import triton as repo
from ..planning.triton_memory import estimate_instance_gib
from . import artifacts
from .errors import RuleError
from .fields import ConfigModel

MODEL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
TENSOR_NAME = r"^[A-Za-z0-9_.:/-]{1,128}$"
ARTIFACT = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+|[^\s:][^\s]*)$"
DataType = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
                   "FP64", "STRING", "BF16"]


class TensorConfig(ConfigModel):
    name: str = Field(pattern=TENSOR_NAME)
    """Tensor name as the model names it (ONNX graph input/output, Python-backend tensor)."""
    data_type: DataType
    """Triton data type (TYPE_FP32 is also accepted for FP32)."""
    dims: list[int] = Field(min_length=1)
    """Shape without the batch dimension when maxBatchSize > 0; -1 for a variable size."""
    optional: bool = False
    """Whether requests may omit this input (inputs only)."""

    @field_validator("data_type", mode="before")
    @classmethod
    def _prefix(cls, v: object) -> object:
        return v.removeprefix("TYPE_") if isinstance(v, str) else v

    @field_validator("dims")
    @classmethod
    def _dims(cls, v: list[int]) -> list[int]:
        bad = [d for d in v if d < 1 and d != -1]
        if bad:
            raise ValueError(f"dimension {bad[0]} — dimensions are >= 1, or -1 for a variable size")
        return v


class InstanceGroupConfig(ConfigModel):
    kind: Literal["GPU", "CPU"] = "GPU"
    """Where the instances run."""
    count: int = Field(1, ge=1, le=64)
    """Instances (on each listed GPU for kind GPU)."""
    gpus: Optional[list[int]] = None
    """GPU indexes inside the Triton pod (0 .. tensorParallelSize-1); unset: every GPU of the pod."""

    @model_validator(mode="after")
    def _gpus(self) -> "InstanceGroupConfig":
        if self.gpus is None:
            return self
        if self.kind == "CPU":
            raise RuleError("gpus", "is for kind GPU only (CPU instances run on the pod's CPUs)")
        if not self.gpus or len(set(self.gpus)) != len(self.gpus) or min(self.gpus) < 0:
            raise RuleError("gpus", f"{self.gpus} — list distinct GPU indexes >= 0 (Triton reads an empty list as "
                                    "every GPU; leave gpus unset for that)")
        return self


class DynamicBatchingConfig(ConfigModel):
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    """Batch sizes the scheduler prefers to form (each <= maxBatchSize)."""
    max_queue_delay_microseconds: int = Field(0, ge=0, le=60_000_000)
    """How long a request may wait for a batch to fill, microseconds."""


class VersionConfig(ConfigModel):
    version: int = Field(ge=1)
    """Version directory number."""
    artifact: Optional[str] = Field(None, pattern=ARTIFACT)
    """This version's artifact (default: the model's artifact)."""


class VersionPolicyConfig(ConfigModel):
    latest: Optional[int] = Field(None, ge=1)
    """Serve the N highest shipped versions."""
    all: Optional[bool] = None
    """Serve every shipped version."""
    specific: Optional[list[int]] = None
    """Serve exactly these versions."""

    @model_validator(mode="after")
    def _one(self) -> "VersionPolicyConfig":
        given = [k for k in ("latest", "all", "specific") if getattr(self, k) not in (None, False)]
        if len(given) != 1:
            raise RuleError("latest", "give exactly one of latest: N, all: true or specific: [versions]")
        return self

    def policy(self) -> repo.VersionPolicy:
        if self.all:
            return repo.VersionPolicy("all")
        if self.specific is not None:
            return repo.VersionPolicy("specific", versions=tuple(self.specific))
        return repo.VersionPolicy("latest", num_versions=self.latest or 1)


class StepConfig(ConfigModel):
    model: str = Field(pattern=MODEL_NAME)
    """Model the step runs (any model of the repository, the LLM included)."""
    version: int = Field(-1, ge=-1)
    """Version of that model; -1 is the one its policy serves."""
    input_map: dict[str, str] = Field(default_factory=dict)
    """Model input name -> ensemble tensor it reads."""
    output_map: dict[str, str] = Field(default_factory=dict)
    """Model output name -> ensemble tensor it writes."""


class TritonModelConfig(ConfigModel):
    """One model of the Triton repository besides the LLM."""

    name: str = Field(pattern=MODEL_NAME)
    """Model name: its repository directory and its URL path /v2/models/<name>."""
    kind: Literal["onnx", "pytorch", "tensorrt", "python", "ensemble"]
    """onnx (ONNX Runtime), pytorch (TorchScript, libtorch), tensorrt (plan file), python (your model.py), ensemble."""
    artifact: Optional[str] = Field(None, pattern=ARTIFACT)
    """The model file for every version: a local path (uploaded by the program) or s3://<bucket>/<key>
    (copied into the repository; s3://model-store/<key> is this stack's model-store bucket)."""
    versions: list[Union[int, VersionConfig]] = Field(default_factory=lambda: [1])
    """Version directories shipped: numbers, or {version, artifact} with each version's own file."""
    version_policy: VersionPolicyConfig = Field(default_factory=lambda: VersionPolicyConfig(latest=1))
    """Which shipped versions Triton serves: {latest: N}, {all: true} or {specific: [..]}."""
    inputs: list[TensorConfig] = Field(default_factory=list)
    """Input tensors (read from the file for a local ONNX artifact when omitted)."""
    outputs: list[TensorConfig] = Field(default_factory=list)
    """Output tensors (read from the file for a local ONNX artifact when omitted)."""
    max_batch_size: int = Field(0, ge=0, le=1_000_000)
    """Largest batch Triton forms (0: the model does not batch; dims then include every dimension)."""
    dynamic_batching: Optional[DynamicBatchingConfig] = None
    """Batch requests together on the server (needs maxBatchSize > 0)."""
    instance_groups: list[InstanceGroupConfig] = Field(default_factory=list)
    """Execution instances; default one on every GPU of the pod (python: one on the CPU; ensembles: none)."""
    gpu_memory_gib: Optional[float] = Field(None, gt=0, le=1024)
    """GPU memory of one instance of one version, GiB (default: estimated from a local artifact's size)."""
    steps: list[StepConfig] = Field(default_factory=list)
    """Ensemble only: the models it runs and how their tensors connect."""
    parameters: dict[str, str] = Field(default_factory=dict)
    """config.pbtxt parameters (string values), e.g. for a Python model to read."""

    @model_validator(mode="after")
    def _shape(self) -> "TritonModelConfig":
        numbers = [v if isinstance(v, int) else v.version for v in self.versions]
        if any(n < 1 for n in numbers):
            raise RuleError("versions", f"{min(numbers)} — version directories are numbered from 1")
        if len(set(numbers)) != len(numbers):
            raise RuleError("versions", f"version {next(n for n in numbers if numbers.count(n) > 1)} is listed twice")
        if not numbers:
            raise RuleError("versions", "[] — ship at least one version")
        for field in ("inputs", "outputs"):
            names = [t.name for t in getattr(self, field)]
            if len(set(names)) != len(names):
                raise RuleError(field, f"tensor {next(n for n in names if names.count(n) > 1)!r} is declared twice")
        if self.kind == "ensemble":
            for k in ("artifact", "dynamic_batching", "gpu_memory_gib"):
                if getattr(self, k) is not None:
                    raise RuleError(_camel(k), "is not allowed for an ensemble (it runs no framework of its own)")
            if self.instance_groups:
                raise RuleError("instanceGroups", "is not allowed for an ensemble (Triton refuses instance groups "
                                                  "on ensembles; give them to the step models)")
            if any(isinstance(v, VersionConfig) and v.artifact for v in self.versions):
                raise RuleError("versions", "an ensemble's versions have no artifact")
            if not self.steps:
                raise RuleError("steps", "[] — an ensemble needs at least one step")
            if not self.inputs or not self.outputs:
                raise RuleError("inputs" if not self.inputs else "outputs", "[] — declare the ensemble's own tensors")
            return self
        if self.steps:
            raise RuleError("steps", f"only ensembles have steps, not {self.kind} models")
        for i, v in enumerate(self.versions):
            if not (isinstance(v, VersionConfig) and v.artifact) and not self.artifact:
                raise RuleError("artifact", f"is required: version {numbers[i]} of {self.name!r} has no artifact — "
                                            "give artifact (a local file or s3://<bucket>/<key>)")
        reads_file = self.kind == "onnx" and all(not artifacts.is_s3(a) for a in self.version_artifacts().values())
        if not reads_file and (not self.inputs or not self.outputs):
            raise RuleError("inputs" if not self.inputs else "outputs", (
                f"[] — declare the {self.kind} model's tensors (only a local ONNX file can be read for them)"))
        if self.dynamic_batching is not None:
            if self.max_batch_size == 0:
                raise RuleError("dynamicBatching", "needs maxBatchSize > 0 (a model that does not batch)")
            too_big = [b for b in self.dynamic_batching.preferred_batch_sizes if b > self.max_batch_size or b < 1]
            if too_big:
                raise RuleError("dynamicBatching.preferredBatchSizes", (
                    f"{too_big[0]} — preferred sizes are 1 .. maxBatchSize {self.max_batch_size}"))
        return self

    def version_artifacts(self) -> dict[int, str]:
        out = {}
        for v in self.versions:
            number = v if isinstance(v, int) else v.version
            artifact = (v.artifact if isinstance(v, VersionConfig) else None) or self.artifact
            if artifact:
                out[number] = artifact
        return out

    def groups(self) -> list[InstanceGroupConfig]:
        if self.kind == "ensemble":
            return []
        if self.instance_groups:
            return list(self.instance_groups)
        return [InstanceGroupConfig(kind="CPU" if self.kind == "python" else "GPU")]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# ---- repository records ---------------------------------------------------------------------------

def check_models(models: list[TritonModelConfig], llm_name: str) -> None:
    """The repository checks from config alone (ServingConfig's rules): RuleError keys relative to
    serving."""
    if not models:
        return
    try:
        repository(models, llm_name, "triton.models", "triton.modelName")
    except repo.RepositoryError as exc:
        raise RuleError(exc.key, exc.message) from None


def repository(models: list[TritonModelConfig], llm_name: str, prefix: str, llm_key: str) -> list[repo.RepoModel]:
    """The repository records, the LLM first, each keyed `<prefix>.<i>`; reads local ONNX files and
    artifact sizes. Raises RuleError / RepositoryError (keys under `prefix`)."""
    records = [repo.vllm_model(llm_name, llm_key)]
    for i, m in enumerate(models):
        if m.name == llm_name:
            raise repo.RepositoryError(f"{prefix}.{i}.name", (
                f"{m.name!r} is the LLM's name (serving.triton.modelName) — give the model its own name"))
        records.append(record(m, f"{prefix}.{i}"))
    repo.check_repository(records)
    return records


def record(m: TritonModelConfig, key: str) -> repo.RepoModel:
    inputs = tuple(_tensor(t) for t in m.inputs)
    outputs = tuple(_tensor(t) for t in m.outputs)
    files = m.version_artifacts()
    local = {v: a for v, a in files.items() if not artifacts.is_s3(a)}
    sizes = {v: artifacts.local_size(f"{key}.artifact" if a == m.artifact else f"{key}.versions", a)
             for v, a in local.items()}
    if m.kind == "onnx":
        for v, path in sorted(local.items()):
            inputs, outputs = _onnx_checked(m, key, path, inputs, outputs)
    gpu, source = m.gpu_memory_gib, "declared"
    if gpu is None:
        if m.kind == "python":
            source = "a Python model's memory is whatever its model.py allocates"
        elif local and len(local) == len(files):
            biggest = max(sizes.values())
            gpu, source = estimate_instance_gib(biggest), f"estimated from a {_size(biggest)} artifact"
        else:
            source = "its artifact is an s3:// key, whose size is unknown at plan time"
    db = m.dynamic_batching
    return repo.RepoModel(
        m.name, m.kind, key, inputs, outputs, m.max_batch_size, _numbers(m),
        m.version_policy.policy(),
        tuple(repo.InstanceGroup(g.kind, g.count, tuple(g.gpus) if g.gpus is not None else None) for g in m.groups()),
        tuple(repo.Step(s.model, s.version, tuple(s.input_map.items()), tuple(s.output_map.items())) for s in m.steps),
        gpu_memory_gib=gpu, gpu_memory_source=source,
        preferred_batch_sizes=tuple(db.preferred_batch_sizes) if db else (),
        max_queue_delay_microseconds=db.max_queue_delay_microseconds if db else None,
        parameters=tuple(sorted(m.parameters.items())))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _numbers(m: TritonModelConfig) -> tuple[int, ...]:
    return tuple(sorted(v if isinstance(v, int) else v.version for v in m.versions))


def _tensor(t: TensorConfig) -> repo.Tensor:
    return repo.Tensor(t.name, t.data_type, tuple(t.dims), t.optional)


def _onnx_checked(m: TritonModelConfig, key: str, path: str, inputs: tuple[repo.Tensor, ...],
                  outputs: tuple[repo.Tensor, ...]) -> tuple[tuple[repo.Tensor, ...], tuple[repo.Tensor, ...]]:
    """The declared tensors checked against the file as Triton's ONNX Runtime backend checks them
    (onnxruntime_backend src/onnxruntime.cc ValidateInputs/ValidateOutputs, CompareDimsSupported):
    every file input declared, each declared tensor in the file with its type, a batching model's
    first dimension variable, the rest equal where the file fixes them. Undeclared: taken from the file."""
    file_inputs, file_outputs = _onnx_cached(key, path, *_stamp(path))
    name = os.path.basename(path)
    batching = m.max_batch_size > 0
    for field, declared, found in (("inputs", inputs, file_inputs), ("outputs", outputs, file_outputs)):
        for t in found:
            if batching and (not t.dims or t.dims[0] != -1):
                raise RuleError(f"{key}.maxBatchSize", (
                    f"{m.max_batch_size} — model {m.name!r} batches, but {field[:-1]} {t.name!r} of {name} has a fixed "
                    f"first dimension {list(t.dims)}; use maxBatchSize 0 or export the model with a dynamic batch axis"))
        if not declared:
            continue
        by_name = {t.name: t for t in found}
        for j, t in enumerate(declared):
            f = by_name.get(t.name)
            if f is None:
                raise RuleError(f"{key}.{field}.{j}.name", (
                    f"model {m.name!r} declares {field[:-1]} {t.name!r}, which {name} does not have — its {field} "
                    f"are {', '.join(repr(x.name) for x in found)}"))
            if f.data_type != t.data_type:
                raise RuleError(f"{key}.{field}.{j}.dataType", (
                    f"{t.data_type} — model {m.name!r} {field[:-1]} {t.name!r} is {f.data_type} in {name}"))
            file_dims = f.dims[1:] if batching else f.dims
            if len(file_dims) != len(t.dims) or any(fd != -1 and fd != d for fd, d in zip(file_dims, t.dims)):
                raise RuleError(f"{key}.{field}.{j}.dims", (
                    f"{list(t.dims)} — model {m.name!r} {field[:-1]} {t.name!r} has shape {list(file_dims)} in {name}"
                    f"{' (after the batch dimension)' if batching else ''}; -1 in the file matches any size"))
        if field == "inputs":
            missing = [t.name for t in found if t.name not in {d.name for d in declared}]
            if missing:
                raise RuleError(f"{key}.inputs", (
                    f"model {m.name!r} does not declare input {missing[0]!r} of {name} — Triton requires every "
                    "input of an ONNX model to be declared (or omit inputs to take them from the file)"))
    debatch = (lambda t: repo.Tensor(t.name, t.data_type, t.dims[1:])) if batching else (lambda t: t)
    return (inputs or tuple(debatch(t) for t in file_inputs), outputs or tuple(debatch(t) for t in file_outputs))


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=64)
def _onnx_cached(key: str, path: str, mtime_ns: int, size: int) -> tuple[tuple[repo.Tensor, ...], tuple[repo.Tensor, ...]]:
    return artifacts.onnx_io(f"{key}.artifact", path)
