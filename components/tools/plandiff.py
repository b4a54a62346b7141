"""What changes between two synthesized plans (plan.json documents) of one stack, as the engine would
plan it: resources matched by URN or by an alias, input paths compared, replacements decided by the
replacement rules (replacement.py), and replacements followed to the resources that use their
computed outputs (in a preview those inputs are unknown, so a ForceNew input there replaces the
dependent too). Pure: no Pulumi import, no files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .replacement import MISSING, Rule, identity, load_rules, rule_for, strip_indices

CREATE, DELETE, UPDATE, REPLACE = "create", "delete", "update", "replace"
PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
MIN_EMBEDDED = 8
"""A computed value shorter than this only matches an input equal to it (never inside a longer one)."""


@dataclass
class Change:
    urn: str
    type: str
    change: str
    paths: list[str] = field(default_factory=list)
    """Input paths that differ (for create/delete: none)."""
    replace_paths: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Input paths whose value a preview cannot know: they come from a resource being replaced."""
    reasons: list[str] = field(default_factory=list)
    base: Optional[dict[str, Any]] = None
    head: Optional[dict[str, Any]] = None
    old_urn: str = ""
    """The base URN when it differs from `urn` (an alias, or a delete+create pair of the same name)."""
    via: str = ""
    """"alias" (the engine follows it: an update or replacement in place) or "recreate" (the URN
    changed with no alias: the engine deletes the old resource and creates a new one)."""
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """(before, after) for each changed path."""

    def as_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "change": self.change, "paths": sorted(set(self.paths))}


def path_join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    key = str(key)
    if PLAIN_KEY.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f'{prefix}["{key}"]'


def diff_values(a: Any, b: Any, prefix: str = "", out: Optional[dict[str, tuple[Any, Any]]] = None
                ) -> dict[str, tuple[Any, Any]]:
    """Every differing path between two JSON values, with (before, after); MISSING for absent."""
    out = {} if out is None else out
    if a == b:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            diff_values(a.get(key, MISSING), b.get(key, MISSING), path_join(prefix, key), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff_values(x, y, path_join(prefix, i), out)
    else:
        out[prefix or "<root>"] = (a, b)
    return out


def leaves(value: Any, prefix: str = ""):
    """(path, scalar) for every scalar in a JSON value."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from leaves(value[key], path_join(prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, path_join(prefix, i))
    elif value is not None:
        yield prefix, value


def resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def provider_urn(reference: str) -> str:
    """A provider reference is `URN::ID`; the URN part."""
    return reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference


def ignored(path: str, ignore_changes: list[str]) -> bool:
    """Whether ignoreChanges covers the path (the path itself or anything under it)."""
    bare = strip_indices(path)
    return any(bare == strip_indices(p) or bare.startswith(strip_indices(p) + ".") for p in ignore_changes)


class PlanDiff:
    """The changes from `base` to `head` (plan.json documents)."""

    def __init__(self, base: dict[str, Any], head: dict[str, Any], rules: Optional[dict[str, Rule]] = None):
        self.rules = load_rules() if rules is None else rules
        self.base = {r["urn"]: r for r in base.get("resources", [])}
        self.head = {r["urn"]: r for r in head.get("resources", [])}
        self.changes: dict[str, Change] = {}
        self._match()
        self._propagate()

    # ---- matching -----------------------------------------------------------------------------------
    def _match(self) -> None:
        matched_base: set[str] = set()
        pairs: list[tuple[dict, dict, str]] = []
        for urn, r in self.head.items():
            if urn in self.base:
                pairs.append((self.base[urn], r, ""))
                matched_base.add(urn)
                continue
            alias = next((a for a in (r.get("options") or {}).get("aliases", []) if a in self.base
                          and a not in matched_base and a not in self.head), None)
            if alias:
                pairs.append((self.base[alias], r, "alias"))
                matched_base.add(alias)
        created = [r for u, r in self.head.items() if u not in self.base and
                   not any(p[1] is r for p in pairs)]
        deleted = [r for u, r in self.base.items() if u not in matched_base]
        # A delete and a create of the same type and name (a new parent, no alias): the engine creates
        # the new resource and deletes the old one. Shown as one replacement of that resource.
        for new in list(created):
            twins = [old for old in deleted if old["type"] == new["type"]
                     and resource_name(old["urn"]) == resource_name(new["urn"])]
            if len(twins) == 1:
                old = twins[0]
                deleted.remove(old)
                created.remove(new)
                change = self._compare(old, new, "recreate")
                change.change = REPLACE
                change.reasons.insert(0, "URN changed with no alias: the engine creates the new resource and "
                                         "deletes the old one")
                self.changes[new["urn"]] = change
        for old, new, via in pairs:
            change = self._compare(old, new, via)
            if change.paths or change.change == REPLACE:
                self.changes[new["urn"]] = change
        for r in created:
            self.changes[r["urn"]] = Change(r["urn"], r["type"], CREATE, head=r)
        for r in deleted:
            self.changes[r["urn"]] = Change(r["urn"], r["type"], DELETE, base=r)

    def _compare(self, old: dict, new: dict, via: str) -> Change:
        options = new.get("options") or {}
        values = diff_values(old.get("inputs") or {}, new.get("inputs") or {})
        values = {p: v for p, v in values.items() if not ignored(p, list(options.get("ignoreChanges") or []))}
        change = Change(new["urn"], new["type"], UPDATE, paths=sorted(values), base=old, head=new, via=via,
                        old_urn=old["urn"] if old["urn"] != new["urn"] else "", values=values)
        if not new.get("custom", True):
            return change  # components: nothing to replace, their children carry the changes
        rule = rule_for(new["type"], self.rules)
        replacing = rule.replacing_paths(change.paths, old.get("inputs") or {}, new.get("inputs") or {},
                                         tuple(options.get("replaceOnChanges") or ()))
        if replacing:
            change.change = REPLACE
            change.replace_paths = replacing
            change.reasons.append(f"{', '.join(replacing)} forces replacement ({_cite(rule)})")
        if provider_urn(old.get("provider") or "") != provider_urn(new.get("provider") or "") and via != "alias":
            change.change = REPLACE
            change.reasons.append("its provider changed")
        return change

    # ---- replacements followed through computed outputs ---------------------------------------------------
    def _propagate(self) -> None:
        queue = [c for c in self.changes.values() if c.change in (REPLACE, UPDATE) and c.head]
        seen_outputs: set[tuple[str, str]] = set()
        while queue:
            source = queue.pop(0)
            unknown = self._unknown_outputs(source)
            fresh = {k: v for k, v in unknown.items() if (source.urn, k) not in seen_outputs}
            if not fresh:
                continue
            seen_outputs.update((source.urn, k) for k in fresh)
            for urn, r in self.head.items():
                if urn == source.urn or source.urn not in (r.get("dependsOn") or []):
                    continue
                existing = self.changes.get(urn)
                if existing is not None and existing.change in (CREATE, DELETE):
                    continue
                hits = self._references(r, source.urn, fresh)
                if not hits:
                    continue
                updated = self._mark_unknown(r, hits, source)
                if updated is not None:
                    queue.append(updated)
            if source.change == REPLACE and source.type.startswith("pulumi:providers:"):
                for urn, r in self.head.items():
                    if provider_urn(r.get("provider") or "") == source.urn:
                        self._force_replace(r, f"its provider {resource_name(source.urn)} is replaced")

    def _unknown_outputs(self, change: Change) -> dict[str, Any]:
        computed = dict((change.head or {}).get("computed") or {})
        if change.change == REPLACE:
            computed.setdefault("id", f"{resource_name(change.urn)}-id")
            return computed
        if not change.head.get("custom", True):
            return {}
        rule = rule_for(change.type, self.rules)
        names = rule.computed_changes(change.paths + change.unknown, change.head.get("inputs") or {})
        return {n: computed[n] for n in names if n in computed}

    @staticmethod
    def _references(resource: dict, source_urn: str, outputs: dict[str, Any]) -> list[str]:
        """Input paths of `resource` that hold one of `outputs` (computed by `source_urn`). Only the
        top-level inputs the engine records as depending on the source are searched; a plan without
        propertyDependencies (older synth) is searched whole, for long values only."""
        inputs = resource.get("inputs") or {}
        by_key = resource.get("propertyDependencies")
        if by_key is None:
            scopes, min_len = [("", inputs)], MIN_EMBEDDED
        else:
            scopes = [(key, inputs[key]) for key, urns in sorted(by_key.items()) if source_urn in urns and key in inputs]
            min_len = 1
        tokens = [str(v) for v in outputs.values() if not isinstance(v, (dict, list)) and len(str(v)) >= min_len]
        found = []
        for key, value in scopes:
            for path, leaf in leaves(value, path_join("", key) if key else ""):
                text = str(leaf)
                if any(text == t or (len(t) >= MIN_EMBEDDED and t in text) for t in tokens):
                    found.append(path or key)
        return found

    def _mark_unknown(self, r: dict, paths: list[str], source: Change) -> Optional[Change]:
        change = self.changes.get(r["urn"])
        if change is None:
            change = Change(r["urn"], r["type"], UPDATE, base=self.base.get(r["urn"]), head=r)
            self.changes[r["urn"]] = change
        new_paths = [p for p in paths if p not in change.unknown]
        if not new_paths:
            return None
        change.unknown += new_paths
        change.paths = sorted(set(change.paths) | set(new_paths))
        why = "replaced" if source.change == REPLACE else "updated"
        change.reasons.append(f"{', '.join(new_paths)} depend on {resource_name(source.urn)} ({why}): unknown until apply")
        if r.get("custom", True) and change.change != REPLACE:
            rule = rule_for(r["type"], self.rules)
            replacing = rule.replacing_paths(new_paths, {}, r.get("inputs") or {},
                                             tuple((r.get("options") or {}).get("replaceOnChanges") or ()))
            if replacing:
                change.change = REPLACE
                change.replace_paths += replacing
                change.reasons.append(f"{', '.join(replacing)} forces replacement ({_cite(rule)})")
        return change

    def _force_replace(self, r: dict, why: str) -> None:
        change = self.changes.get(r["urn"])
        if change is None:
            change = Change(r["urn"], r["type"], UPDATE, base=self.base.get(r["urn"]), head=r)
            self.changes[r["urn"]] = change
        if change.change in (CREATE, DELETE):
            return
        change.change = REPLACE
        change.reasons.append(why)

    # ---- results ---------------------------------------------------------------------------------------
    def sorted_changes(self) -> list[Change]:
        order = {REPLACE: 0, DELETE: 1, CREATE: 2, UPDATE: 3}
        return sorted(self.changes.values(), key=lambda c: (order[c.change], c.urn))

    def same_identity_recreations(self) -> list[tuple[dict, dict]]:
        """(old, new) resources the engine deletes and creates (different URNs, no alias) while
        both name the same live object: the create adopts or fails on the live object, then the
        delete of the old URN deletes it."""
        deleted = [c.base for c in self.changes.values() if c.change == DELETE and c.base]
        deleted += [c.base for c in self.changes.values() if c.via == "recreate" and c.base]
        created = [c.head for c in self.changes.values() if c.change == CREATE and c.head]
        created += [c.head for c in self.changes.values() if c.via == "recreate" and c.head]
        found = []
        for new in created:
            key = identity(new["type"], new.get("inputs") or {}, self.rules)
            if key is None:
                continue
            for old in deleted:
                if old["urn"] != new["urn"] and identity(old["type"], old.get("inputs") or {}, self.rules) == key:
                    found.append((old, new))
        return found


def _cite(rule: Rule) -> str:
    src = rule.source
    file = src.get("file", "")
    repo = src.get("repository", "")
    return f"{repo} {file}".strip()
