"""The one error type for configs that cannot work, the rule error validators raise, and the helpers
every message is built with.

A ConfigError is one line: the full key path, the bad value and the fix (and, when it came from a
stack file, where in it). It derives from `pulumi.RunError`, so the Pulumi CLI prints it without a
traceback. Whatever a stack file holds, the line stays one line of bounded length: values are quoted
with `format_value` (repr, cut), and the key, message and location are made printable and cut too.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

import pulumi

NAMESPACE = "servingstack"

#: Bounds of the parts of an error line (characters): the whole line stays under ~1,000.
MAX_VALUE_CHARS = 80
MAX_KEY_CHARS = 160
MAX_MESSAGE_CHARS = 640
MAX_WHERE_CHARS = 160


def one_line(text: str, limit: int) -> str:
    """`text` with every control or non-printable character escaped as repr does (so a newline can
    never split an error), cut to `limit` characters with an ellipsis."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_value(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A bad value as an error quotes it: repr for strings (quotes visible, newlines escaped), compact
    JSON for lists and maps, cut to `limit` characters; never a newline."""
    if isinstance(value, (dict, list)):
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
        except (ValueError, RecursionError):  # circular or absurdly deep: repr still terminates
            text = repr(type(value).__name__)
    elif isinstance(value, str):
        if len(value) > limit:  # cut before quoting: a 10 MB value is never copied whole
            value = value[:limit]
            text = repr(value)[:-1] + "…" + repr(value)[-1]
        else:
            text = repr(value)
    else:
        text = repr(value)
    return one_line(text, limit)


class ConfigError(pulumi.RunError):
    """A stack config that cannot work. One line: key path, bad value, what to do instead, and where
    (`stacks/Pulumi.prod.yaml:12:5`) when the loader knows it."""

    def __init__(self, key: str, message: str, where: str = "", *, absolute: bool = False):
        self.key = key
        self.message = message
        self.where = where
        self.absolute = absolute
        # Keys are relative to the servingstack: namespace, except provider keys such as aws:region
        # and keys given `absolute` (a stack-file key as written, e.g. one without a namespace).
        full = key if (absolute or ":" in key.split(".")[0] or not key) else f"{NAMESPACE}:{key}"
        self.full_key = full
        text = one_line(message, MAX_MESSAGE_CHARS)
        if full:
            text = f"{one_line(full, MAX_KEY_CHARS)}: {text}"
        if where:
            text = f"{text} (in {one_line(where, MAX_WHERE_CHARS)})"
        super().__init__(text)

    def located(self, where: str) -> "ConfigError":
        """The same error, naming where in the stack file it is."""
        return type(self)(self.key, self.message, where, absolute=self.absolute)


class RuleError(ValueError):
    """A cross-field rule failure raised inside a model validator, carrying its own key (relative to
    the model that raised it); turned into a ConfigError with the full path by the loader."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insertions, deletions, substitutions, transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def close_match(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate `word` is most likely a misspelling of (case-insensitive): within an edit or two
    (one for names of up to four letters), or close by difflib's ratio; None when nothing is close."""
    import difflib

    options = {c.lower(): c for c in candidates}
    low = word.lower()
    if low in options:
        return options[low]
    if len(low) > 200:  # no key is that long: nothing to suggest, and no quadratic work
        return None
    best = min(options, key=lambda c: (_edit_distance(low, c), c), default=None)
    if best is not None and _edit_distance(low, best) <= (1 if len(best) <= 4 else 2):
        return options[best]
    close = difflib.get_close_matches(low, list(options), n=1, cutoff=0.75)
    return options[close[0]] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' — did you mean X?' for the closest candidate (case-insensitive), or '' when none is close.
    The one suggestion helper for stack-file keys, namespaces and component arguments alike."""
    match = close_match(word, candidates)
    return f" — did you mean {format_value(match)}?" if match is not None else ""
