"""The one error type for configs that cannot work, and the rule error validators raise.

A ConfigError is one line: the full key path, the bad value and the fix. It derives from
`pulumi.RunError`, so the Pulumi CLI prints it without a traceback.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import pulumi

NAMESPACE = "servingstack"


class ConfigError(pulumi.RunError):
    """A stack config that cannot work. One line: key path, bad value, what is allowed."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        # Keys are relative to the servingstack: namespace, except provider keys such as aws:region.
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        super().__init__(f"{full}: {message}" if key else message)


class RuleError(ValueError):
    """A cross-field rule failure raised inside a model validator, carrying its own key (relative to
    the model that raised it); turned into a ConfigError with the full path by the loader."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def format_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, str):
        return repr(value)
    return str(value)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' — did you mean X?' for the closest candidate (case-insensitive), or '' when none is close.
    The one suggestion helper for stack-file keys, namespaces and component arguments alike."""
    import difflib

    options = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.75)
    return f" — did you mean {options[close[0]]!r}?" if close else ""
