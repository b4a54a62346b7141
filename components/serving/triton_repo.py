"""Pure: the Triton model repository for an LLM on the vLLM backend, generated from typed settings.

Layout (keys under the repository prefix):
    <model_name>/config.pbtxt     backend "vllm", one KIND_MODEL instance (tensor parallelism > 1
                                  requires KIND_MODEL; KIND_GPU errors)
    <model_name>/1/model.json     vLLM AsyncEngineArgs
"""

from __future__ import annotations

import json
from typing import Any, Optional


def config_pbtxt(model_name: str, report_metrics: bool = True) -> str:
    lines = [
        f'name: "{model_name}"',
        'backend: "vllm"',
        "instance_group [",
        "  {",
        "    count: 1",
        "    kind: KIND_MODEL",
        "  }",
        "]",
    ]
    if report_metrics:
        # vLLM engine metrics (vllm:*) on Triton's metrics port 8002.
        lines += [
            "parameters: {",
            '  key: "REPORT_CUSTOM_METRICS"',
            '  value: { string_value: "true" }',
            "}",
        ]
    return "\n".join(lines) + "\n"


def model_json(model: str, tensor_parallel_size: int, max_model_len: int, gpu_memory_utilization: float,
               max_num_seqs: int, enable_prefix_caching: bool, dtype: str,
               quantization: Optional[str] = None) -> str:
    """vLLM engine args for the backend (keys are AsyncEngineArgs fields)."""
    engine: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_seqs": max_num_seqs,
        "enable_prefix_caching": enable_prefix_caching,
        "dtype": dtype,
        "disable_log_requests": True,
        "disable_log_stats": False,
    }
    if quantization:
        engine["quantization"] = quantization
    return json.dumps(engine, indent=2, sort_keys=False) + "\n"


def repository_files(model_name: str, **engine: Any) -> dict[str, str]:
    """Relative key -> content for every file of the repository."""
    return {
        f"{model_name}/config.pbtxt": config_pbtxt(model_name),
        f"{model_name}/1/model.json": model_json(**engine),
    }
