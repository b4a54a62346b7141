"""Shared helpers of the input-hardening tests: stack files as text, run through the CLI entry point
in-process (`servingstack.tools.cli.main`), with the one-line error contract checked."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from servingstack.tools import cli

ROOT = Path(__file__).resolve().parent.parent
#: Longest error line the contract allows (config/errors.py bounds key, message and location).
MAX_ERROR_LINE = 1024


def stack_text(stack: str) -> str:
    return (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()


def with_config_lines(stack: str, *lines: str) -> str:
    """The stack file with `lines` added at the top of its config: map (two-space indented)."""
    text = stack_text(stack)
    head, sep, tail = text.partition("\nconfig:\n")
    assert sep, stack
    return head + sep + "".join(f"  {line}\n" for line in lines) + tail


def replaced(stack: str, old: str, new: str) -> str:
    text = stack_text(stack)
    assert text.count(old) == 1, (stack, old)
    return text.replace(old, new)


class Timeout(BaseException):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Timeout in the main thread after `seconds` (a hang fails the case, never the suite)."""
    def expire(signum, frame):  # noqa: ARG001
        raise Timeout(f"no answer within {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(capfd, argv: list[str], seconds: float = 60) -> tuple[int, str, str]:
    capfd.readouterr()
    with deadline(seconds):
        rc = cli.main(argv)
    out, err = capfd.readouterr()
    return rc, out, err


def one_error_line(err: str, key: Optional[str] = None) -> str:
    """The single stderr line of a refusal: starts with `error: ` (and the key path), bounded, no
    traceback."""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}:\n{err[:3000]}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in line
    assert len(line) <= MAX_ERROR_LINE, f"{len(line)} characters: {line[:300]}..."
    if key is not None:
        assert line.startswith(f"error: {key}: "), f"expected key path {key!r} in: {line}"
    return line


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its bytes (to show a folder untouched)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()} \
        if path.exists() else {}
