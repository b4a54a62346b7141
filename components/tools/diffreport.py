"""The Markdown form of `servingstack diff` (the pull-request comment): one summary table, then per
stack its hazards and changes. Values are shown only for short scalar inputs that are not secret:
never for redacted values, Secret objects, kubeconfigs or user data; paths always.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..config import REDACTED
from .plandiff import CREATE, DELETE, REPLACE, UPDATE, Change, resource_name
from .replacement import MISSING

MARKER = "<!-- servingstack-diff -->"
"""First line of the comment: the PR workflow updates the comment that starts with it."""
SECRET_WORDS = ("secret", "token", "password", "kubeconfig", "userdata", "stringdata", "apikey", "credential")
MAX_VALUE = 60
MAX_PATHS = 8


def money(value: Optional[float]) -> str:
    return "—" if value is None else f"${value:,.2f}"


def delta(before: Optional[float], after: Optional[float]) -> str:
    if before is None or after is None:
        return ""
    d = after - before
    return "" if abs(d) < 0.005 else f" ({'+' if d > 0 else '−'}${abs(d):,.2f})"


def pair(values: tuple[Optional[int], Optional[int]]) -> str:
    before, after = values
    show = lambda v: "—" if v is None else str(v)  # noqa: E731
    return show(after) if before == after else f"{show(before)} → {show(after)}"


def _secretish(change: Change, path: str) -> bool:
    if change.type == "kubernetes:core/v1:Secret":
        return True
    flat = path.replace("_", "").lower()
    return any(w in flat for w in SECRET_WORDS)


def _show(value: Any) -> Optional[str]:
    if value is MISSING:
        return "(unset)"
    if isinstance(value, (dict, list)) or value is None:
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if REDACTED in text or len(text) > MAX_VALUE or "`" in text or "\n" in text:
        return None
    return f"`{text}`"


def path_text(change: Change, path: str) -> str:
    if path in change.unknown:
        return f"`{path}` (known after apply)"
    before, after = change.values.get(path, (MISSING, MISSING))
    if path in change.values and not _secretish(change, path):
        a, b = _show(before), _show(after)
        if a is not None and b is not None:
            return f"`{path}`: {a} → {b}"
    return f"`{path}`"


def change_row(change: Change) -> str:
    paths = sorted(set(change.paths), key=lambda p: (p not in change.replace_paths, p))
    shown = [path_text(change, p) for p in paths[:MAX_PATHS]]
    if len(paths) > MAX_PATHS:
        shown.append(f"… {len(paths) - MAX_PATHS} more")
    detail = "; ".join(shown)
    if change.change == REPLACE and change.reasons:
        detail = (detail + " — " if detail else "") + change.reasons[0]
    if change.old_urn:
        detail += f" (from `{resource_name(change.old_urn)}` under a different parent)" if change.via == "recreate" \
            else " (via alias)"
    return f"| {change.change} | `{resource_name(change.urn)}` | `{change.type}` | {detail} |"


def counts(changes: Sequence[Change]) -> str:
    n = {k: sum(1 for c in changes if c.change == k) for k in (REPLACE, DELETE, CREATE, UPDATE)}
    parts = [f"{v} {k}" for k, v in n.items() if v]
    return ", ".join(parts) or "no changes"


def markdown(diffs: Sequence[Any], base_label: str, head_label: str) -> str:
    lines = [MARKER, f"## servingstack diff: `{base_label}` → `{head_label}`", "",
             "| stack | changes | monthly cost | GPUs | GPU nodes | hazards |", "|---|---|---:|---|---|---:|"]
    for d in diffs:
        if d.error:
            lines.append(f"| {d.stack} | **failed**: {d.error.splitlines()[0][:200]} | | | | |")
            continue
        (gpus, nodes) = d.gpus()
        before, after = d.cost()
        cost = money(after) if before == after else f"{money(before)} → {money(after)}{delta(before, after)}"
        lines.append(f"| {d.stack} | {counts(d.changes)} | {cost} | {pair(gpus)} | {pair(nodes)} | "
                     f"{len(d.hazards) or ''} |")
    lines += ["", "Offline: both sides synthesized with the mock runtime; replacements from "
                  "`components/tools/replacement_rules.yaml` (provider sources). Costs are on-demand/spot GPU "
                  "and licence estimates, not a bill. `pulumi preview` against the real stacks stays authoritative.",
              ""]
    for d in diffs:
        if d.error or not (d.changes or d.hazards or d.notes):
            continue
        lines += [f"### {d.stack}", ""]
        lines += [f"_{note}_\n" for note in d.notes]
        if d.hazards:
            lines += ["**Hazards**", ""]
            lines += [f"- **{h.kind}** `{resource_name(h.urn) if h.urn else d.stack}`: {h.message}" for h in d.hazards]
        if d.changes:
            rows = [change_row(c) for c in d.changes]
            lines += ["", f"<details{' open' if len(rows) <= 12 else ''}><summary>{counts(d.changes)}</summary>", "",
                      "| change | resource | type | inputs |", "|---|---|---|---|", *rows, "", "</details>"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
