"""Construction benchmark: time and peak memory to construct and record a stack under Pulumi's mock
runtime (components/tools/offline/recorder.py: the same path as `servingstack synth` and the tests).

  (a) the prod stack built by the components (components/program.py) against the same resources
      written with raw pulumi-aws / pulumi-kubernetes (benchmarks/raw_prod.py): what the
      abstraction costs. Target: components within 1.25x of raw.
  (b) 1, 10 and 50 serving deployments, each with its GPU node pool (benchmarks/fleet.py): how
      construction cost grows with the number of models. Target: linear.

Run from the repository root:  .venv/bin/python benchmarks/construct.py  (or `make bench`; --help)
Times are wall-clock with tracemalloc off; peak memory comes from separate runs under tracemalloc.
Times are the minimum (and median) of the repeats, after one warm-up run of every program; the
minimum is the figure least disturbed by other processes. In (a) the two programs' runs alternate
and the ratio is the median of the per-pair ratios, which cancels slow drift in machine load. Times
are taken twice: as a program runs (CPython's cyclic garbage collector on) and with the collector
paused during the run ("gc paused"), which separates the construction work from full collections
that scan every object the imported provider SDKs left on the heap.
"""

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from servingstack.tools.offline.recorder import SynthResult, normalize, run_program  # noqa: E402
from servingstack.tools.synth import engine_config, read_stack_file  # noqa: E402

import fleet  # noqa: E402
import raw_prod  # noqa: E402

HF_TOKEN = "hf_benchmark_placeholder"
FLEET_SIZES = (1, 10, 50)
COMPONENT_TARGET = 1.25
LINEARITY_TARGET = 1.25


@dataclass
class Measurement:
    name: str
    resources: int
    seconds: list[float]
    seconds_gc_paused: list[float]
    peak_mib: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min_s(self) -> float:
        return min(self.seconds)

    @property
    def median_paused_s(self) -> float:
        return statistics.median(self.seconds_gc_paused)

    @property
    def median_mib(self) -> float:
        return statistics.median(self.peak_mib)


def prod_config() -> tuple[dict[str, str], list[str]]:
    """The prod stack file as the engine hands it to the program, with an HF token set, without its
    monitoring (the raw program reproduces the serving platform, not kube-prometheus-stack)."""
    config, secret_keys, _ = engine_config(read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml"))
    config.pop("servingstack:observability", None)
    config["servingstack:hfToken"] = HF_TOKEN
    secret_keys.append("servingstack:hfToken")
    return config, secret_keys


def component_prod() -> dict[str, Any]:
    from servingstack.program import build

    return build()


def run(program: Callable[[], dict[str, Any]], config: dict[str, str], secret_keys: list[str],
        region: str) -> SynthResult:
    return run_program(program, config, secret_keys, "prod", region, (HF_TOKEN,))


def timed(fn: Callable[[], SynthResult], gc_paused: bool = False) -> float:
    gc.collect()
    if gc_paused:
        gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def traced(fn: Callable[[], SynthResult]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def measure(programs: dict[Any, Callable[[], SynthResult]], repeats: int,
            memory_repeats: int) -> dict[Any, Measurement]:
    """Warm up every program once, then interleave their repeats (so drift hits all alike)."""
    out = {}
    for name, fn in programs.items():
        result = fn()
        out[name] = Measurement(str(name), len(result.resources), [], [], [])
    for _ in range(repeats):
        for name, fn in programs.items():
            out[name].seconds.append(timed(fn))
            out[name].seconds_gc_paused.append(timed(fn, gc_paused=True))
    for _ in range(memory_repeats):
        for name, fn in programs.items():
            out[name].peak_mib.append(traced(fn))
    return out


def same_resources(a: SynthResult, b: SynthResult) -> tuple[int, int, int]:
    """(custom resources in a, in b, with identical type, name and inputs)."""
    left = {(r.type, r.name): normalize(r.inputs) for r in a.resources if r.custom}
    right = {(r.type, r.name): normalize(r.inputs) for r in b.resources if r.custom}
    return len(left), len(right), sum(1 for k, v in left.items() if right.get(k) == v)


def marginal(values: dict[int, float]) -> list[tuple[int, int, float]]:
    """Cost per added model between consecutive sizes: [(from, to, per model)]."""
    sizes = sorted(values)
    return [(lo, hi, (values[hi] - values[lo]) / (hi - lo)) for lo, hi in zip(sizes, sizes[1:])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per program in (a) (default 15)")
    parser.add_argument("--fleet-repeats", type=int, default=5, help="timed runs per size in (b) (default 5)")
    parser.add_argument("--memory-repeats", type=int, default=3, help="tracemalloc runs per program (default 3)")
    parser.add_argument("--sizes", default=",".join(map(str, FLEET_SIZES)),
                        help="numbers of models in (b), comma-separated (default 1,10,50)")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    opts = parser.parse_args()
    sizes = sorted({int(n) for n in opts.sizes.split(",")})
    warnings.simplefilter("ignore")

    config, secret_keys = prod_config()
    region = config["aws:region"]
    print(f"python {platform.python_version()} on {platform.machine()}; min (median) of {opts.repeats} timed runs "
          f"in (a), {opts.fleet_repeats} in (b); peak memory: median of {opts.memory_repeats} tracemalloc runs\n")

    # (a) components against raw resources
    a = measure({
        "components": lambda: run(component_prod, config, secret_keys, region),
        "raw": lambda: run(raw_prod.main, config, secret_keys, region),
    }, opts.repeats, opts.memory_repeats)
    n_comp, n_raw, identical = same_resources(run(component_prod, config, secret_keys, region),
                                              run(raw_prod.main, config, secret_keys, region))
    comp, raw = a["components"], a["raw"]
    ratios = {  # runs are interleaved, so each repeat gives one components/raw pair under the same load
        "time": statistics.median(c / r for c, r in zip(comp.seconds, raw.seconds)),
        "time_of_minimums": comp.min_s / raw.min_s,
        "time_gc_paused": statistics.median(c / r for c, r in zip(comp.seconds_gc_paused, raw.seconds_gc_paused)),
        "peak_memory": comp.median_mib / raw.median_mib,
    }
    print("(a) prod stack: components vs raw pulumi-aws/pulumi-kubernetes")
    print(f"    same resources: {identical} of {n_comp} (components) / {n_raw} (raw) custom resources have "
          f"identical type, name and inputs")
    print(f"    {'':<11} {'registrations':>13} {'time ms':>17} {'gc paused ms':>17} {'peak MiB':>9}")
    for m in a.values():
        print(f"    {m.name:<11} {m.resources:13d} {m.min_s * 1000:7.1f} ({m.median_s * 1000:7.1f}) "
              f"{min(m.seconds_gc_paused) * 1000:7.1f} ({m.median_paused_s * 1000:7.1f}) {m.median_mib:9.1f}")
    print(f"    RATIO components/raw: time {ratios['time']:.2f}x (median of the paired runs; ratio of the minimums "
          f"{ratios['time_of_minimums']:.2f}x, gc paused {ratios['time_gc_paused']:.2f}x), peak memory "
          f"{ratios['peak_memory']:.2f}x; target <= {COMPONENT_TARGET}x: "
          f"{'met' if ratios['time'] <= COMPONENT_TARGET else 'MISSED'}\n")

    # (b) growth with the number of deployments
    b = measure({n: (lambda n=n: run(fleet.fleet_program(n), {"aws:region": "us-east-1"}, [], "us-east-1"))
                 for n in sizes}, opts.fleet_repeats, opts.memory_repeats)
    print("(b) N serving deployments (GPU node pool + vLLM server + namespace each) on one adopted cluster")
    print(f"    {'models':>6} {'registrations':>13} {'time ms':>9} {'per model':>9} {'gc paused ms':>12} "
          f"{'per model':>9} {'peak MiB':>9}")
    for n in sizes:
        m = b[n]
        print(f"    {n:6d} {m.resources:13d} {m.min_s * 1000:9.1f} {m.min_s * 1000 / n:9.1f} "
              f"{min(m.seconds_gc_paused) * 1000:12.1f} {min(m.seconds_gc_paused) * 1000 / n:9.1f} {m.median_mib:9.1f}")
    steps = {
        "time": marginal({n: b[n].min_s for n in sizes}),
        "time_gc_paused": marginal({n: min(b[n].seconds_gc_paused) for n in sizes}),
        "peak_memory": marginal({n: b[n].median_mib for n in sizes}),
    }
    for kind, unit, scale in (("time", "ms", 1000), ("time_gc_paused", "ms", 1000), ("peak_memory", "MiB", 1)):
        print(f"    marginal {kind.replace('_', ' ')} per model: " +
              ", ".join(f"{v * scale:.{1 if scale > 1 else 2}f} {unit} ({lo}->{hi})" for lo, hi, v in steps[kind]))
    linearity = {k: v[-1][2] / v[0][2] for k, v in steps.items()} if len(sizes) > 2 else {}
    if linearity:
        first, last = steps["time"][0][:2], steps["time"][-1][:2]
        print(f"    LINEARITY (marginal {last[0]}->{last[1]} / marginal {first[0]}->{first[1]}; 1.00 = linear): "
              f"time {linearity['time']:.2f}, gc paused {linearity['time_gc_paused']:.2f}, peak memory "
              f"{linearity['peak_memory']:.2f}; target <= {LINEARITY_TARGET}: time "
              f"{'met' if linearity['time'] <= LINEARITY_TARGET else 'MISSED'}, gc paused "
              f"{'met' if linearity['time_gc_paused'] <= LINEARITY_TARGET else 'MISSED'}")

    if opts.json:
        opts.json.write_text(json.dumps({
            "python": platform.python_version(), "a": {k: asdict(v) for k, v in a.items()}, "a_ratios": ratios,
            "a_identical_resources": identical, "b": {str(k): asdict(v) for k, v in b.items()},
            "b_marginal": steps, "b_linearity": linearity,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
