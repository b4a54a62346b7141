"""Local model artifacts read at plan time: their size (for the GPU memory estimate) and, for ONNX
files, the graph's inputs and outputs (so a declared mismatch is refused before anything is built).

An artifact is either a local file (uploaded by the program) or `s3://<bucket>/<key>` (copied into
the repository by the program; `s3://model-store/<key>` names the stack's own model-store bucket).
The `onnx` package is needed only to read local ONNX files: it is the `onnx` extra
(`pip install 'servingstack[onnx]'`); without it such a config is refused in one line.
"""

from __future__ import annotations

import os
from typing import Optional

from ..planning.triton import DATA_TYPES, Tensor
from .errors import RuleError

STORE_BUCKET = "model-store"
"""The bucket name in `s3://model-store/<key>` that stands for the stack's model-store bucket."""

# onnx.TensorProto.DataType value -> Triton data type (Triton's model_configuration.md datatype table;
# numbers from onnx.proto: FLOAT=1 UINT8=2 INT8=3 UINT16=4 INT16=5 INT32=6 INT64=7 STRING=8 BOOL=9
# FLOAT16=10 DOUBLE=11 UINT32=12 UINT64=13 BFLOAT16=16).
ONNX_TYPES = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
              9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64", 16: "BF16"}
assert set(ONNX_TYPES.values()) <= set(DATA_TYPES)


def is_s3(artifact: str) -> bool:
    return artifact.startswith("s3://")


def s3_parts(artifact: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// artifact; the bucket is STORE_BUCKET for the stack's own store."""
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    return bucket, key


def local_size(key: str, path: str) -> int:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise RuleError(key, f"{path!r} cannot be read ({exc.strerror}) — give the path of the model file (relative "
                             "paths are from the directory the program runs in), or an s3:// key in the model "
                             "store") from None
    if not os.path.isfile(path):
        raise RuleError(key, f"{path!r} is not a file — give the model file itself")
    return size


def onnx_io(key: str, path: str) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """The graph inputs (initializers excluded) and outputs of a local ONNX file, full shapes (-1 for
    symbolic or unknown dimensions)."""
    try:
        import onnx
    except ImportError:
        raise RuleError(key, (f"{path!r} is a local ONNX file, and reading its inputs and outputs needs the onnx "
                              "package — pip install 'servingstack[onnx]' (or upload it and give its s3:// key "
                              "with inputs and outputs declared)")) from None
    try:
        # Only the graph is needed; external weight files are not loaded.
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - the onnx package raises DecodeError, ValueError, OSError...
        raise RuleError(key, f"{path!r} is not a readable ONNX model ({type(exc).__name__}) — export the model "
                             "with torch.onnx.export or optimum") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    return (tuple(_tensor(key, path, v) for v in graph.input if v.name not in initializers),
            tuple(_tensor(key, path, v) for v in graph.output))


def _tensor(key: str, path: str, value: object) -> Tensor:
    t = value.type.tensor_type  # type: ignore[attr-defined]
    data_type: Optional[str] = ONNX_TYPES.get(t.elem_type)
    if data_type is None:
        raise RuleError(key, f"{path!r} tensor {value.name!r} has ONNX element type {t.elem_type}, which Triton's "  # type: ignore[attr-defined]
                             "ONNX Runtime backend does not map to a model-config data type")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim)
    return Tensor(value.name, data_type, dims)  # type: ignore[attr-defined]
