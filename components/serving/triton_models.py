"""Pure: the files of the Triton repository for the models served beside the LLM.

Layout under the repository prefix (Triton's model_repository.md):
    <model>/config.pbtxt           rendered from the typed config (every field is a ModelConfig field of
                                   Triton's model_config.proto; tests parse each with that protobuf)
    <model>/<version>/<file>       the version's artifact: model.onnx, model.pt, model.plan or model.py,
                                   uploaded from a local file or copied from an s3:// object
    <ensemble>/<version>/          an empty "directory" object: S3 has no directories, and Triton finds a
                                   version directory by listing the prefix (core src/filesystem s3.h
                                   IsDirectory), so an ensemble's empty version directory needs a marker

Order of writes (`after`): a model's artifacts before its config.pbtxt, and a step model's config
before the ensemble's, so a poll never sees a config that names a file or a model not yet written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import artifacts
from ..config.triton_models import TritonModelConfig
from ..planning.triton import ARTIFACT_FILES, BACKENDS, RepoModel, Tensor


@dataclass(frozen=True)
class RepoObject:
    key: str
    """Key relative to the repository prefix."""
    content: Optional[str] = None
    """Text written as is (config.pbtxt, directory markers)."""
    path: Optional[str] = None
    """A local file uploaded as is."""
    source: Optional[tuple[str, str]] = None
    """(bucket, key) of an object copied into place; the bucket is artifacts.STORE_BUCKET for the stack's store."""
    content_type: str = "text/plain"
    after: tuple[str, ...] = ()
    """Keys (relative) written before this one."""


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensor_lines(label: str, tensors: tuple[Tensor, ...]) -> list[str]:
    if not tensors:
        return []
    lines = [f"{label} ["]
    for i, t in enumerate(tensors):
        lines += ["  {", f"    name: {_q(t.name)}", f"    data_type: TYPE_{t.data_type}",
                  f"    dims: [ {', '.join(map(str, t.dims))} ]"]
        if t.optional:
            lines.append("    optional: true")
        lines.append("  }" + ("," if i < len(tensors) - 1 else ""))
    return lines + ["]"]


def config_pbtxt(m: RepoModel) -> str:
    """The model's config.pbtxt (text-format ModelConfig)."""
    field, value = BACKENDS[m.kind]
    lines = [f"name: {_q(m.name)}", f"{field}: {_q(value)}", f"max_batch_size: {m.max_batch_size}"]
    p = m.policy
    if p.kind == "all":
        lines.append("version_policy: { all: { } }")
    elif p.kind == "specific":
        lines.append(f"version_policy: {{ specific: {{ versions: [ {', '.join(map(str, p.versions))} ] }} }}")
    else:
        lines.append(f"version_policy: {{ latest: {{ num_versions: {p.num_versions} }} }}")
    lines += _tensor_lines("input", m.inputs) + _tensor_lines("output", m.outputs)
    if m.instance_groups:
        lines.append("instance_group [")
        for i, g in enumerate(m.instance_groups):
            lines += ["  {", f"    count: {g.count}", f"    kind: KIND_{g.kind}"]
            if g.gpus is not None:
                lines.append(f"    gpus: [ {', '.join(map(str, g.gpus))} ]")
            lines.append("  }" + ("," if i < len(m.instance_groups) - 1 else ""))
        lines.append("]")
    if m.max_queue_delay_microseconds is not None:
        lines.append("dynamic_batching {")
        if m.preferred_batch_sizes:
            lines.append(f"  preferred_batch_size: [ {', '.join(map(str, m.preferred_batch_sizes))} ]")
        lines += [f"  max_queue_delay_microseconds: {m.max_queue_delay_microseconds}", "}"]
    if m.steps:
        lines += ["ensemble_scheduling {", "  step ["]
        for i, s in enumerate(m.steps):
            lines += ["    {", f"      model_name: {_q(s.model)}", f"      model_version: {s.version}"]
            lines += [f"      input_map {{ key: {_q(k)} value: {_q(v)} }}" for k, v in s.input_map]
            lines += [f"      output_map {{ key: {_q(k)} value: {_q(v)} }}" for k, v in s.output_map]
            lines.append("    }" + ("," if i < len(m.steps) - 1 else ""))
        lines += ["  ]", "}"]
    for k, v in m.parameters:
        lines += ["parameters: {", f"  key: {_q(k)}", f"  value: {{ string_value: {_q(v)} }}", "}"]
    return "\n".join(lines) + "\n"


_TYPES = {"python": "text/x-python"}


def repository_objects(models: list[TritonModelConfig], records: list[RepoModel]) -> list[RepoObject]:
    """Every object of the models beside the LLM, in an order that respects `after`. `records` are the
    repository records (planning/triton.py) of the same models, by name."""
    by_name = {r.name: r for r in records}
    objects: dict[str, list[RepoObject]] = {}
    configs: dict[str, RepoObject] = {}
    for m in models:
        r = by_name[m.name]
        files: list[RepoObject] = []
        if m.kind == "ensemble":
            files = [RepoObject(f"{m.name}/{v}/", content="", content_type="application/x-directory")
                     for v in r.versions]
        else:
            for v, artifact in sorted(m.version_artifacts().items()):
                key = f"{m.name}/{v}/{ARTIFACT_FILES[m.kind]}"
                ctype = _TYPES.get(m.kind, "application/octet-stream")
                files.append(RepoObject(key, source=artifacts.s3_parts(artifact), content_type=ctype)
                             if artifacts.is_s3(artifact) else RepoObject(key, path=artifact, content_type=ctype))
        objects[m.name] = files
        steps = tuple(f"{s.model}/config.pbtxt" for s in r.steps if s.model in {x.name for x in models})
        configs[m.name] = RepoObject(f"{m.name}/config.pbtxt", content=config_pbtxt(r),
                                     after=tuple(o.key for o in files) + steps)
    ordered: list[RepoObject] = []
    placed: set[str] = set()

    def place(name: str) -> None:  # step models' configs first (ensembles form no cycle: checked)
        if name in placed:
            return
        placed.add(name)
        for s in by_name[name].steps:
            if s.model in configs:
                place(s.model)
        ordered.extend(objects[name])
        ordered.append(configs[name])

    for m in models:
        place(m.name)
    return ordered


def identity(objects: list[RepoObject]) -> dict[str, str]:
    """Relative key -> what the object holds (its text, `file sha256:<hex>` of a local file, or
    `copy s3://<bucket>/<key>` of a copied one): a new version, a changed file or a moved policy each
    change it. It is deliberately kept out of any pod-template hash: these models reload in place in
    poll mode (the memory plan keeps room for the reload), so their changes never restart the pods
    that hold the LLM; only the LLM's own files roll the pods."""
    import hashlib

    out = {}
    for o in objects:
        if o.path is not None:
            digest = hashlib.sha256()
            with open(o.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            out[o.key] = f"file sha256:{digest.hexdigest()}"
        elif o.source is not None:
            out[o.key] = f"copy s3://{o.source[0]}/{o.source[1]}"
        else:
            out[o.key] = o.content or ""
    return out


def resource_name(component: str, key: str) -> str:
    """The Pulumi name of a repository object (the LLM's files use the same rule)."""
    name = f"{component}-{key.replace('/', '-').replace('.', '-')}"
    return name[:-1] + "-dir" if name.endswith("-") else name
