"""`servingstack diff`: what a change does to every stack, offline, as `pulumi preview` would plan it:
resources created, deleted, updated (with the input paths that change) and replaced (by the
replacement rules, replacement_rules.yaml, with their sources), the monthly cost and GPUs before and
after, and the hazards (hazards.py). No cloud credentials: both sides are synthesized plans.

    servingstack diff --base BASE [--head HEAD] [--stack NAME ...] [--json]

BASE and HEAD: a directory of builds (`<dir>/<stack>/plan.json`, as `make synth` writes build/) or a
git ref (synthesized with that ref's own code in a temporary worktree, diffsource.py). HEAD defaults
to the working tree's stacks synthesized now. Exit codes: 0 no change, 3 changes without hazards,
4 hazards, 2 a usage or config error (one line), 1 anything else failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .diffsource import Build, Side
from .hazards import Hazard, Violation, gpu_totals, stack_hazards
from .plandiff import Change, PlanDiff

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_CHANGES, EXIT_HAZARDS = 0, 1, 2, 3, 4


@dataclass
class StackDiff:
    stack: str
    base: Build
    head: Build
    changes: list[Change] = field(default_factory=list)
    hazards: list[Hazard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return self.base.error or self.head.error

    def cost(self) -> tuple[Optional[float], Optional[float]]:
        return (self.base.outputs.get("monthlyCostUsd") if self.base.plan is not None else None,
                self.head.outputs.get("monthlyCostUsd") if self.head.plan is not None else None)

    def gpus(self) -> tuple[tuple[Optional[int], Optional[int]], tuple[Optional[int], Optional[int]]]:
        """((GPUs before, after), (GPU nodes before, after))."""
        b, h = gpu_totals(self.base.outputs), gpu_totals(self.head.outputs)
        return (b[0], h[0]), (b[1], h[1])

    def as_json(self) -> dict[str, Any]:
        base, head = self.cost()
        return {"monthlyCostUsd": {"base": base, "head": head},
                "changes": [c.as_json() for c in self.changes],
                "hazards": [h.as_json() for h in self.hazards]}


def recorded(plan: dict[str, Any]) -> list[Any]:
    """plan.json resources as the recorder's RecordedResource (what the policy runner takes)."""
    from .offline.recorder import RecordedResource

    return [RecordedResource.from_plan(r) for r in plan.get("resources", [])]


def policy_violations(plan: dict[str, Any], environment: str) -> list[Violation]:
    """The policy pack (policy/policies.py) run in-process on a plan, as `servingstack check` runs it;
    the mandatory failures. Raises ImportError without pulumi-policy."""
    from .check import FAIL, policy_rows, resource_label

    resources = recorded(plan)
    urns = {resource_label(r.type, r.name): r.urn for r in resources}
    return [Violation(row.check, urns.get(row.resource, ""), row.resource, row.message)
            for row in policy_rows(resources, environment) if row.result == FAIL]


def environment_of(build: Build) -> str:
    return str(build.outputs.get("environment") or "prod")


def diff_stack(name: str, base: Build, head: Build, run_policies: bool = True) -> StackDiff:
    result = StackDiff(name, base, head)
    if result.error:
        return result
    empty = {"resources": []}
    if base.plan is None:
        result.notes.append(f"stack {name} is new: every resource is created")
    if head.plan is None:
        result.notes.append(f"stack {name} is gone from the head: `pulumi up` does not destroy a stack whose "
                            f"file was removed (that takes `pulumi destroy`); shown as every resource deleted")
    diff = PlanDiff(base.plan or empty, head.plan or empty)
    result.changes = diff.sorted_changes()
    base_v: list[Violation] = []
    head_v: list[Violation] = []
    if run_policies and head.plan is not None:
        try:
            head_v = policy_violations(head.plan, environment_of(head))
            base_v = policy_violations(base.plan, environment_of(base)) if base.plan is not None else []
        except ImportError as exc:
            result.notes.append(f"policy pack not run: {exc} (install the dev dependencies: make install-dev)")
    result.hazards = stack_hazards(diff, base.outputs, head.outputs, base_v, head_v)
    return result


def diff_sides(base: Side, head: Side, stacks: Optional[Sequence[str]] = None,
               run_policies: bool = True) -> list[StackDiff]:
    names = list(stacks) if stacks else sorted(set(base.builds) | set(head.builds))
    return [diff_stack(n, base.builds.get(n, Build(n)), head.builds.get(n, Build(n)), run_policies) for n in names]


def exit_code(diffs: Sequence[StackDiff]) -> int:
    if any(d.head.config_error for d in diffs):
        return EXIT_CONFIG
    if any(d.error for d in diffs):
        return EXIT_FAILED
    if any(d.hazards for d in diffs):
        return EXIT_HAZARDS
    if any(d.changes for d in diffs):
        return EXIT_CHANGES
    return EXIT_OK


def document(diffs: Sequence[StackDiff]) -> dict[str, Any]:
    """The `--json` document (README "servingstack diff --json"); stacks that failed are left out."""
    return {"stacks": {d.stack: d.as_json() for d in diffs if not d.error}}


def run(base_spec: str, head_spec: Optional[str], stacks: Optional[Sequence[str]], as_json: bool) -> int:
    """The command: print Markdown (or JSON) on stdout, errors on stderr; the exit code."""
    import json
    import sys

    from .diffreport import markdown
    from .diffsource import DiffSourceError, resolve_side

    try:
        base = resolve_side(base_spec, stacks)
        head = resolve_side(head_spec, stacks)
    except DiffSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if stacks:
        unknown = [s for s in stacks if base.builds.get(s, Build(s)).plan is None
                   and head.builds.get(s, Build(s)).plan is None
                   and not base.builds.get(s, Build(s)).error and not head.builds.get(s, Build(s)).error]
        if unknown:
            print(f"error: --stack {', '.join(unknown)}: no such stack in {base.label} or {head.label}", file=sys.stderr)
            return EXIT_CONFIG
    diffs = diff_sides(base, head, stacks)
    for d in diffs:
        if d.error:
            print(f"error: {d.error}", file=sys.stderr)
    if as_json:
        print(json.dumps(document(diffs), indent=2, sort_keys=True))
    else:
        print(markdown(diffs, base.label, head.label))
    return exit_code(diffs)
