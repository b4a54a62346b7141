"""YAML scalars as the Pulumi CLI reads them: its Go YAML library (gopkg.in/yaml.v3, resolve.go)
resolves plain scalars by YAML 1.2 rules, not PyYAML's YAML 1.1 ones.

- booleans are only true/True/TRUE and false/False/FALSE (`yes`, `on`, `no` are strings);
- null is `~`, `null`, `Null`, `NULL` or nothing; `.inf`, `-.Inf`, `.nan` are floats;
- integers are Go syntax with `_` removed (`0x1F`, `0o17`, `0b101`, `0777` octal, `1_000`);
- floats are `[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`; an overflowing one stays text;
- timestamps (`2024-06-01`) reach a program as text (yaml.v3 decodes them into interface{} as strings);
- `!!binary` is its decoded bytes as text; other tags (`!!set` on a scalar, `!custom`) leave the text.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

PLAIN = "!servingstack/plain"
"""Resolver marker for an untagged plain scalar (resolved by `resolve_plain`)."""
_Y = "tag:yaml.org,2002:"
_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")
_NULL = ("", "~", "null", "Null", "NULL")
_SPECIAL_FLOATS = {".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan, **{
    f"{sign}{inf}": (-math.inf if sign == "-" else math.inf) for sign in ("", "+", "-") for inf in (".inf", ".Inf", ".INF")}}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", re.ASCII)
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)", re.ASCII)
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?", re.ASCII)


def resolve_plain(text: str) -> Any:
    """An untagged plain scalar's value."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[0] == "." and _YAML_FLOAT.fullmatch(text):
        return float(text)
    if text[0] not in "0123456789+-" or len(text) > 400 or _TIMESTAMP.fullmatch(text):
        return text
    plain = text.replace("_", "")
    match = _GO_INT.fullmatch(plain)
    if match and len(plain) <= 80:
        sign, body = match.groups()
        prefixed = body[:1] == "0" and body[1:2].isalpha()
        base = {"x": 16, "o": 8, "b": 2}[body[1].lower()] if prefixed else 8 if body[:1] == "0" else 10
        value = int(body[2:] if prefixed else body, base) * (-1 if sign == "-" else 1)
        if -2**63 <= value < 2**64:  # Go's int64/uint64; beyond, yaml.v3 tries a float
            return value
    if _YAML_FLOAT.fullmatch(plain):
        value = float(plain)
        if math.isfinite(value):  # Go's ParseFloat reports overflow: yaml.v3 keeps the text
            return value
    return text


def resolve_tagged(tag: str, text: str) -> Any:
    """A scalar's value under its tag (PLAIN for an untagged plain one). ValueError when the text is
    not what an explicit !!int, !!float, !!bool, !!null or !!binary tag says (yaml.v3 refuses it too)."""
    if tag == PLAIN:
        return resolve_plain(text)
    if tag in ("!", f"{_Y}str", f"{_Y}timestamp"):
        return text
    if tag == f"{_Y}int":
        value = resolve_plain(text) if text else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tag == f"{_Y}float":
        value = resolve_plain(text) if text else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tag == f"{_Y}bool":
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    elif tag == f"{_Y}null":
        if text in _NULL:
            return None
    elif tag == f"{_Y}binary":
        try:
            return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            pass
    else:
        return text
    raise ValueError(f"cannot decode {tag.replace(_Y, '!!')}")
