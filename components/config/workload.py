"""`servingstack:workload`: what the environment is planned to serve, for the performance estimate.

The default is the source document's benchmark: 32 concurrent requests. The document does not state
its prompt and output lengths; 1,024 input / 256 output tokens is the fixed shape the benchmark
protocol uses (performance-facts.md §7.4, the `vllm bench serve --random-input-len 1024
--random-output-len 256` example) and the one every worked number in performance-facts.md §2 and §5.4
is computed for, so the estimate can be checked against them. (The document's own TTFT and
throughput imply prompts of only ~220 tokens, §3.1; set yours.)
"""

from __future__ import annotations

import math
from typing import Optional

from pydantic import Field

from ..planning.performance import Workload
from .fields import ConfigModel

DEFAULT_INPUT_TOKENS = 1024
DEFAULT_OUTPUT_TOKENS = 256
DEFAULT_CONCURRENCY = 32


class WorkloadConfig(ConfigModel):
    input_tokens: int = Field(DEFAULT_INPUT_TOKENS, ge=1, le=1048576)
    """Prompt tokens per request."""
    output_tokens: int = Field(DEFAULT_OUTPUT_TOKENS, ge=1, le=1048576)
    """Generated tokens per request."""
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=100000)
    """Requests in flight across the environment (closed loop), shared evenly by the serving replicas;
    default: the source document's 32 concurrent requests."""
    ttft_p99_ms: Optional[float] = Field(None, gt=0, le=3_600_000)
    """Target time to first token, ms: a warning (and `advise` filtering) when the estimate misses it.
    The model estimates means, so a P99 target is checked against the expected TTFT."""
    itl_p50_ms: Optional[float] = Field(None, gt=0, le=3_600_000)
    """Target inter-token latency, ms: a warning (and `advise` filtering) when the estimate misses it."""

    def per_replica(self, replicas: int) -> Workload:
        """The workload one of `replicas` replicas sees (concurrency split evenly, rounded up)."""
        return Workload(self.input_tokens, self.output_tokens, max(1, math.ceil(self.concurrency / max(replicas, 1))),
                        self.ttft_p99_ms, self.itl_p50_ms)
