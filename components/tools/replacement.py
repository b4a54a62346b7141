"""Which input changes replace a resource: the data in replacement_rules.yaml (one entry per resource
type, each with its upstream source) and the matching of changed input paths against it.

Paths are Pulumi property paths as plan.json's inputs spell them: `scalingConfig.desiredSize`,
`spec.template.spec.containers[0].image`. List indices are transparent when matching a rule
(`instanceTypes[0]` changes `instanceTypes`), and a change inside a rule's path counts
(`spec.selector.matchLabels.app` is under `spec.selector`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

RULES_FILE = Path(__file__).with_name("replacement_rules.yaml")
INDEX = re.compile(r"\[[^\]]*\]")
MISSING = object()
"""An input that is absent (as opposed to present with the value None)."""


class MissingRuleError(LookupError):
    """A resource type with no entry in replacement_rules.yaml."""


def strip_indices(path: str) -> str:
    return INDEX.sub("", path)


def covers(rule: str, path: str) -> bool:
    """Whether a change at `path` is a change of `rule`'s value: the same path, a path inside it, or
    a parent of it (the whole parent object changed, added or removed)."""
    rule, path = strip_indices(rule), strip_indices(path)
    return path == rule or path.startswith(rule + ".") or rule.startswith(path + ".")


def lookup(value: Any, path: str) -> Any:
    """The value at a dotted path (indices ignored: the first element of a list), or MISSING."""
    node = value
    for part in strip_indices(path).split("."):
        while isinstance(node, list) and node:
            node = node[0]
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


@dataclass(frozen=True)
class Conditional:
    path: str
    when: str
    """`removed` (present before, absent after), `updated` (present on both sides, different) or
    `changed` (any difference)."""
    why: str = ""
    unless_stable: str = ""
    """Skip when this input is set on both sides and equal (pulumi-kubernetes clusterIdentifier)."""

    def applies(self, base: dict[str, Any], head: dict[str, Any]) -> bool:
        old, new = lookup(base, self.path), lookup(head, self.path)
        if old == new:
            return False
        if self.unless_stable:
            before, after = lookup(base, self.unless_stable), lookup(head, self.unless_stable)
            if before is not MISSING and before == after:
                return False
        if self.when == "removed":
            return old is not MISSING and new is MISSING
        if self.when == "updated":
            return old is not MISSING and new is not MISSING
        return True


@dataclass(frozen=True)
class Rule:
    type: str
    source: dict[str, Any]
    replace_on: tuple[str, ...] = ()
    optional_computed: tuple[str, ...] = ()
    conditionals: tuple[Conditional, ...] = ()
    identity: tuple[str, ...] = ()
    computed_on_change: dict[str, Any] = field(default_factory=dict)
    new_version_on: tuple[str, ...] = ()
    rolls_nodes_on: tuple[str, ...] = ()
    note: str = ""

    def replacing_paths(self, changed: list[str], base: dict[str, Any], head: dict[str, Any],
                        extra: tuple[str, ...] = ()) -> list[str]:
        """The changed paths (and conditional rule paths) that force replacement. `extra` are the
        resource's own replaceOnChanges option paths."""
        found: list[str] = []
        for path in changed:
            for rule in (*self.replace_on, *extra):
                if not covers(rule, path):
                    continue
                if rule in self.optional_computed and lookup(head, rule) is MISSING:
                    continue  # Optional+Computed: removing the input keeps the prior value
                found.append(path)
                break
        found += [c.path for c in self.conditionals if c.applies(base, head) and c.path not in found]
        return found

    def computed_changes(self, changed: list[str], head: dict[str, Any]) -> list[str]:
        """Computed outputs that become unknown in a preview because of these changed paths."""
        out = []
        for output, spec in sorted(self.computed_on_change.items()):
            spec = spec or {}
            if spec.get("onlyIf") and not head.get(spec["onlyIf"]):
                continue
            except_ = set(spec.get("except") or [])
            if any(strip_indices(p).split(".")[0] not in except_ for p in changed):
                out.append(output)
        return out

    def creates_new_version(self, changed: list[str]) -> bool:
        return any(covers(k, p) for k in self.new_version_on for p in changed)

    def rolls_nodes(self, changed: list[str]) -> bool:
        return any(covers(k, p) for k in self.rolls_nodes_on for p in changed)


def _rule(type_: str, doc: dict[str, Any]) -> Rule:
    conditionals = tuple(Conditional(c["path"], c.get("when", "changed"), c.get("why", ""),
                                     c.get("unlessStable", "")) for c in doc.get("replaceWhen") or [])
    return Rule(type=type_, source=dict(doc.get("source") or {}), replace_on=tuple(doc.get("replaceOn") or ()),
                optional_computed=tuple(doc.get("optionalComputed") or ()), conditionals=conditionals,
                identity=tuple(doc.get("identity") or ()), computed_on_change=dict(doc.get("computedOnChange") or {}),
                new_version_on=tuple(doc.get("newVersionOn") or ()),
                rolls_nodes_on=tuple(doc.get("rollsNodesOn") or ()), note=str(doc.get("note") or ""))


@functools.lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE) -> dict[str, Rule]:
    doc = yaml.safe_load(path.read_text()) or {}
    return {t: _rule(t, d or {}) for t, d in (doc.get("types") or {}).items()}


def missing_rule_message(type_: str, where: str = "") -> str:
    place = f" (registered by {where})" if where else ""
    return (f"components/tools/replacement_rules.yaml has no entry for {type_}{place}: add `\"{type_}\":` under `types:` with `source:` "
            f"{{repository, commit, file}} (the provider source that defines its replacement behaviour) and "
            f"`replaceOn:` (the Pulumi input paths whose change forces replacement; [] if none), plus "
            f"`identity:` when inputs name the live object; see the header of that file")


def rule_for(type_: str, rules: Optional[dict[str, Rule]] = None) -> Rule:
    """The rule of a type (component types match `servingstack:index:*`). Raises MissingRuleError."""
    rules = load_rules() if rules is None else rules
    if type_ in rules:
        return rules[type_]
    package = type_.split(":", 1)[0]
    wildcard = f"{package}:index:*"
    if wildcard in rules and type_.startswith(f"{package}:index:"):
        return rules[wildcard]
    raise MissingRuleError(missing_rule_message(type_))


def is_kubernetes_object(type_: str) -> bool:
    return type_.startswith("kubernetes:") and not type_.startswith("kubernetes:helm.sh/")


def identity(type_: str, inputs: dict[str, Any], rules: Optional[dict[str, Rule]] = None) -> Optional[tuple]:
    """What names the live object behind a resource, or None when nothing does (AWS-assigned IDs,
    auto-named resources). Kubernetes objects: API group, kind, namespace, name."""
    if is_kubernetes_object(type_):
        meta = inputs.get("metadata") or {}
        if not isinstance(meta, dict) or not meta.get("name"):
            return None
        group = str(inputs.get("apiVersion", "")).rpartition("/")[0]
        return ("k8s", group, inputs.get("kind"), meta.get("namespace") or "", meta["name"])
    try:
        rule = rule_for(type_, rules)
    except MissingRuleError:
        return None
    if not rule.identity:
        return None
    values = [lookup(inputs, p) for p in rule.identity]
    if any(v is MISSING or v in (None, "") for v in values):
        return None
    return (type_, *[str(v) for v in values])
