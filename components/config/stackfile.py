"""Reading a Pulumi stack file: any file -> its config map (with the position of every key), or one
StackFileError line. The one loading layer for offline synth, check and cost.

What it guarantees, whatever the file holds:
- only regular files are read (a FIFO, /dev/zero or a directory is refused before any read), at most
  MAX_FILE_BYTES of them; the bytes must be UTF-8 (the error names the line and column of the first
  byte that is not);
- YAML is parsed as the Pulumi CLI's Go YAML library (yaml.v3) reads it: YAML 1.2 scalars (`yes`,
  `on` and dates are strings, `0x1F` and `1_000` integers), `<<` merge keys, duplicate keys refused
  (with the line of the first one), nesting bounded by MAX_DEPTH and alias expansion by MAX_NODES
  (a 546-byte alias bomb fails in milliseconds), every scalar kind handled (`!!binary`, `!!set`,
  timestamps, unknown tags);
- values under other tools' namespaces come back as the engine would hand them over (JSON-like
  data with string keys), never as Python objects json cannot write;
- keys under `servingstack:` must be strings (`8080: http` inside a map is refused, with a hint).
Positions are 1-based (line, column) of each key, keyed by its dotted path from the config key
(`servingstack:serving.replicas`, `servingstack:extraGpuNodePools.0.name`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from yaml import nodes
from yaml.composer import Composer
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from .errors import NAMESPACE, ConfigError, close_match, format_value
from .namespaces import STACK_FILE_KEYS
from .yaml12 import PLAIN, resolve_tagged

MAX_FILE_BYTES = 1 << 20
"""Largest stack file read (1 MiB; the shipped ones are ~2 KB)."""
MAX_DEPTH = 32
"""Deepest nesting of maps and lists, aliases expanded (the config models nest 5 deep)."""
MAX_NODES = 100_000
"""Most values a file may expand to once aliases and merge keys are resolved."""
_MERGE = "tag:yaml.org,2002:merge"

class StackFileError(ConfigError):
    """A stack file that cannot be read or parsed, or a key in it that is wrong before any model sees it."""


@dataclass
class StackFile:
    path: Path
    config: dict[str, Any]
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def display(self) -> str:
        return str(self.path)

    def where(self, full_key: str) -> str:
        """`path:line:col` of the key (or of its nearest enclosing key in the file), else `path`."""
        probe = full_key
        while probe:
            if probe in self.positions:
                line, col = self.positions[probe]
                return f"{self.display}:{line}:{col}"
            probe = probe.rpartition(".")[0]
        return self.display

    def locate(self, exc: ConfigError) -> ConfigError:
        """The error, naming where in this file it is (once)."""
        if exc.where or type(exc) not in (ConfigError, StackFileError):  # e.g. a component's ArgumentError
            return exc
        return exc.located(self.where(exc.full_key))


class _Bounded:
    """Resolver and composer hooks: no implicit resolvers (plain scalars are resolved by yaml12.resolve_plain),
    composition depth bounded (PyYAML's composer recurses once per level)."""

    depth = 0

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is nodes.ScalarNode and implicit[0]:
            return PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[misc]

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _Refusal(mark, f"nests deeper than {MAX_DEPTH} levels — a stack config is a few levels of "
                               "maps and lists")
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1


try:  # libyaml's event parser (C, not recursive) under PyYAML's composer: ~5x faster than pure Python
    from yaml.cyaml import CParser

    class _Loader(_Bounded, Composer, CParser, BaseResolver):  # type: ignore[misc]
        BYTE_POSITIONS = True

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            BaseResolver.__init__(self)
except ImportError:  # PyYAML built without libyaml
    class _Loader(_Bounded, Reader, Scanner, Parser, Composer, BaseResolver):  # type: ignore[no-redef]
        BYTE_POSITIONS = False

        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            BaseResolver.__init__(self)


class _Refusal(Exception):
    def __init__(self, mark: Any, message: str, key: str = ""):
        super().__init__(message)
        self.mark, self.message, self.key = mark, message, key


def read_stack_file(path: Union[str, Path]) -> StackFile:
    """Read, decode and parse a stack file. Raises StackFileError (one line, naming the file)."""
    display = str(path)
    if display == "":
        raise StackFileError("", "--config '' names no file — give the path of a Pulumi stack file, e.g. "
                                 "stacks/Pulumi.dev.yaml")
    path = Path(path)
    text = _decode(_read_bytes(path, display), display)
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        if root is None:
            return StackFile(path, {})
        _measure(root, 1, {})
        return _stack_file(path, root)
    except _Refusal as exc:
        where = f"{display}:{exc.mark.line + 1}:{exc.mark.column + 1}" if exc.mark else display
        if exc.key:
            raise StackFileError(exc.key, exc.message, where, absolute=True) from None
        raise StackFileError("", f"{where}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise StackFileError("", f"{where}: cannot read stack file: YAML {problem}") from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", 0)
        if _Loader.BYTE_POSITIONS:  # libyaml counts bytes of the UTF-8 text
            position = len(text.encode()[:position].decode(errors="ignore"))
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        raise StackFileError("", f"{display}:{line}:{col}: cannot read stack file: it holds a character YAML does "
                                 f"not allow ({getattr(exc, 'reason', 'special characters')})") from None


def _read_bytes(path: Path, display: str) -> bytes:
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise StackFileError("", f"{display}: cannot read stack file: it is a directory — give the path of a "
                                     "Pulumi stack file")
        if not stat.S_ISREG(st.st_mode):
            raise StackFileError("", f"{display}: cannot read stack file: it is not a regular file (a FIFO, device "
                                     "or socket) — give the path of a Pulumi stack file")
        if st.st_size > MAX_FILE_BYTES:
            raise StackFileError("", f"{display}: cannot read stack file: it is {st.st_size:,} bytes, more than "
                                     f"the {MAX_FILE_BYTES:,} a stack file may have")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat and open
                raise StackFileError("", f"{display}: cannot read stack file: it is not a regular file")
            chunks, size = [], 0
            while size <= MAX_FILE_BYTES:
                chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StackFileError("", f"{display}: cannot read stack file: {exc.strerror or exc}") from None
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise StackFileError("", f"{display}: cannot read stack file: it has more than the {MAX_FILE_BYTES:,} bytes "
                                 "a stack file may have")
    return data


def _decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackFileError("", f"{display}:{line}:{col}: cannot read stack file: byte 0x{data[exc.start]:02x} is "
                                 "not UTF-8 — save the file as UTF-8") from None


def _measure(node: Any, depth: int, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values, height) of a node with aliases expanded; refuses cycles, depth and size past the bounds."""
    known = memo.get(id(node))
    if known == (-1, -1):
        raise _Refusal(node.start_mark, "holds an alias that refers to itself")
    if known is None:
        memo[id(node)] = (-1, -1)
        size, height = 1, 1
        children = [c for pair in node.value for c in pair] if isinstance(node, nodes.MappingNode) else \
            node.value if isinstance(node, nodes.SequenceNode) else []
        for child in children:
            if depth + 1 > MAX_DEPTH:
                raise _Refusal(child.start_mark, f"nests deeper than {MAX_DEPTH} levels (aliases expanded) — a stack "
                               "config is a few levels of maps and lists")
            child_size, child_height = _measure(child, depth + 1, memo)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_NODES:
                raise _Refusal(node.start_mark, f"expands to more than {MAX_NODES:,} values (aliases and merge keys "
                               "resolved) — an alias bomb or a generated file, not a stack config")
        known = memo[id(node)] = (size, height)
    if depth + known[1] - 1 > MAX_DEPTH:
        raise _Refusal(node.start_mark, f"nests deeper than {MAX_DEPTH} levels (aliases expanded)")
    return known


def _stack_file(path: Path, root: Any) -> StackFile:
    if not isinstance(root, nodes.MappingNode):
        raise _Refusal(root.start_mark, "a stack file is a YAML map with a `config:` map")
    positions: dict[str, tuple[int, int]] = {}
    doc = _mapping(root, "", positions, strict=False, top=True)
    unknown = [k for k in doc if k not in STACK_FILE_KEYS]
    if unknown:
        match = close_match(unknown[0], STACK_FILE_KEYS)
        hint = f"did you mean {format_value(match)}?" if match else f"a stack file holds {', '.join(STACK_FILE_KEYS)}"
        raise _Refusal(_key_mark(root, unknown[0]), f"{format_value(unknown[0])} is not a stack file key — {hint}")
    config = doc.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _Refusal(_key_mark(root, "config"), "a stack file is a YAML map with a `config:` map")
    result = StackFile(path, config, {k.removeprefix("config."): v for k, v in positions.items()
                                      if k.startswith("config.")})
    if "environment" in doc:
        result.notices.append(f"notice: {path}: `environment:` imports Pulumi ESC environments, which synth does not "
                              "resolve: config they provide is not seen offline")
    return result


def _key_mark(mapping: Any, key: str) -> Any:
    return next((k.start_mark for k, _ in mapping.value if isinstance(k, nodes.ScalarNode) and k.value == key),
                mapping.start_mark)


def _value(node: Any, path: str, positions: dict[str, tuple[int, int]], strict: bool) -> Any:
    if isinstance(node, nodes.ScalarNode):
        return _scalar(node)
    if isinstance(node, nodes.SequenceNode):
        items = []
        for i, child in enumerate(node.value):
            positions.setdefault(f"{path}.{i}", (child.start_mark.line + 1, child.start_mark.column + 1))
            items.append(_value(child, f"{path}.{i}", positions, strict))
        return items
    return _mapping(node, path, positions, strict)


def _mapping(node: Any, path: str, positions: dict[str, tuple[int, int]], strict: bool, top: bool = False) -> dict:
    merged: dict[str, Any] = {}
    explicit: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, nodes.ScalarNode) and key_node.tag in (PLAIN, _MERGE) and key_node.value == "<<":
            sources = value_node.value if isinstance(value_node, nodes.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, nodes.MappingNode):
                    raise _Refusal(source.start_mark, "a `<<` merge key takes a map or a list of maps")
                for k, v in _mapping(source, path, {}, strict).items():
                    merged.setdefault(k, v)
            continue
        key = _key(key_node, path, strict, top)
        if key in explicit:
            raise _Refusal(key_node.start_mark, f"{format_value(key)} appears twice in this map (first at line "
                           f"{first_line[key]}) — YAML maps hold each key once; remove one",
                           key=_config_key(path, key))
        child_path = _join(path, key)
        first_line[key] = key_node.start_mark.line + 1
        positions[child_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        ns_strict = strict or (path == "config" and key.split(":")[0] == NAMESPACE)
        explicit[key] = _value(value_node, child_path, positions, ns_strict)
    return {**merged, **explicit}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _config_key(path: str, key: str) -> str:
    """The config key path (`servingstack:serving.replicas`) of `key` under `path`, '' outside config."""
    full = _join(path, key)
    return full.removeprefix("config.") if full.startswith("config.") else ""


def _key(node: Any, path: str, strict: bool, top: bool) -> str:
    if not isinstance(node, nodes.ScalarNode):
        raise _Refusal(node.start_mark, "uses a map or list as a map key — keys are names")
    value = _scalar(node)
    if isinstance(value, str):
        return value
    if strict:
        kind = "a boolean" if isinstance(value, bool) else "null" if value is None else "a number"
        shown = node.value or "null"
        raise _Refusal(node.start_mark, f"key {shown} is {kind}, not a name — quote it (\"{shown}\")",
                       key=_config_key(path, shown))
    return node.value  # the engine reads such keys as the text written


def _scalar(node: Any) -> Any:
    try:
        return resolve_tagged(node.tag, node.value)
    except ValueError as exc:
        raise _Refusal(node.start_mark, f"{exc} {format_value(node.value)} — remove the tag or fix the value") from None
