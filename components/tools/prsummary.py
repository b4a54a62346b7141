"""`make pr-summary`: a Markdown summary of every synthesized stack (resources and monthly cost),
for a pull request's job summary. Reads build/<stack>/plan.json and outputs.json, as written by
`servingstack synth` / `servingstack check`; prints Markdown on stdout.

    python -m servingstack.tools.prsummary build/dev build/prod ...
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence


def _load(path: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _group(resource_type: str) -> str:
    if resource_type.startswith("servingstack:"):
        return "components"
    return resource_type.split(":", 1)[0]


def stack_summary(build_dir: Path) -> tuple[list[str], list[str]]:
    """(table row, detail lines) for one stack's build directory."""
    stack = build_dir.name
    plan, outputs = _load(build_dir / "plan.json"), _load(build_dir / "outputs.json")
    if plan is None or outputs is None:
        return [f"| {stack} | not synthesized | | | | |"], []
    resources = plan.get("resources", [])
    groups = Counter(_group(r["type"]) for r in resources)
    kinds = Counter(r["type"] for r in resources if not r["type"].startswith(("servingstack:", "pulumi:")))
    gpu = outputs.get("gpuSummary") or {}
    cost = outputs.get("monthlyCostBreakdown") or {}
    counts = ", ".join(f"{n} {g}" for g, n in sorted(groups.items()))
    serving = f"{outputs.get('servingStack')} {outputs.get('model')}"
    gpus = (f"{gpu.get('replicas')} replica(s) x {gpu.get('gpusPerReplica')} GPU(s) on {gpu.get('gpuNodes')} x "
            f"{gpu.get('instanceType')}")
    row = (f"| {stack} | {len(resources)} ({counts}) | {serving} | {gpus} | "
           f"${outputs.get('monthlyCostUsd', 0):,.2f} | {cost.get('rateSource', '')} |")
    detail = [f"<details><summary>{stack}: {len(resources)} resources</summary>", "", "| count | type |", "|---:|---|"]
    detail += [f"| {n} | `{t}` |" for t, n in sorted(kinds.items())]
    detail += ["", "</details>", ""]
    return [row], detail


def render(build_dirs: Sequence[Path]) -> str:
    lines = ["## servingstack: what each stack would build", "",
             "| stack | resources | serving | GPUs | monthly cost | rates |", "|---|---|---|---|---:|---|"]
    details: list[str] = []
    for d in build_dirs:
        row, detail = stack_summary(d)
        lines += row
        details += detail
    lines += ["", "Offline synthesis (`make check`): estimated on-demand/spot GPU and licence cost, not a bill.", ""]
    return "\n".join(lines + details)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m servingstack.tools.prsummary build/<stack> ...", file=sys.stderr)
        return 2
    print(render([Path(a) for a in args]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
