"""Writing a build into `--out` all at once: into a temporary folder first, moved into place only
when complete. A refusal or a failure leaves nothing new behind and an earlier build untouched.

When `--out` does not exist yet, the temporary folder (a sibling) is renamed to it in one step.
When it exists (an earlier build, or a folder holding other files too), the temporary folder is made
inside it and each output (manifests/, plan.json, outputs.json) replaces its old copy; other files
in the folder are left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..config.errors import one_line

OUTPUTS = ("manifests", "plan.json", "outputs.json")


class OutputError(Exception):
    """`--out` cannot take the outputs: one line, exit 1."""


def _fail(out: Path, problem: str) -> OutputError:
    return OutputError(one_line(f"--out {out}: {problem}", 400))


def preflight(out: Path) -> None:
    """Refuse an `--out` that cannot take the outputs, before any work is done."""
    if str(out) == "":
        raise _fail(out, "names no folder — give the folder to write manifests/, plan.json and outputs.json into")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise _fail(out, "is a file, not a folder — choose another --out")
        for name in OUTPUTS:
            item = out / name
            want_dir = name == "manifests"
            if (item.exists() or item.is_symlink()) and item.is_dir() != want_dir:
                kind = "a file" if want_dir else "a folder"
                raise _fail(out, f"{name} there is {kind} — remove it or choose another --out")
        if not os.access(out, os.W_OK | os.X_OK):
            raise _fail(out, "is not writable (permission denied) — choose another --out")
        return
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _fail(out, f"{ancestor} is a file, not a folder — choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _fail(out, f"cannot create it: {ancestor} is not writable (permission denied)")


def replace_outputs(out: Path, write: Callable[[Path], None]) -> None:
    """`write(folder)` fills a fresh temporary folder; then its outputs replace those in `out`.
    Raises OutputError (one line) on any operating-system error, with nothing new left behind."""
    preflight(out)
    created: list[Path] = []
    tmp = None
    done = False
    try:
        existed = out.is_dir()
        if not existed:
            missing = [p for p in [out.absolute().parent, *out.absolute().parent.parents] if not p.exists()]
            for folder in reversed(missing):
                folder.mkdir()
                created.append(folder)
        tmp = Path(tempfile.mkdtemp(prefix=".servingstack-", suffix=".tmp",
                                    dir=out if existed else out.absolute().parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the build folder gets the usual mode
        write(tmp)
        if existed:
            _swap(out, tmp)
        else:
            os.rename(tmp, out)
            tmp = None
        done = True
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        raise _fail(out, f"cannot write the outputs: {detail}{where}") from None
    except ValueError as exc:  # an output that is not valid JSON (NaN, Infinity)
        raise _fail(out, f"cannot write the outputs: {exc}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            for folder in reversed(created):
                try:
                    folder.rmdir()
                except OSError:
                    pass


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _swap(out: Path, tmp: Path) -> None:
    """Move out's old outputs aside (into tmp, deleted afterwards) and tmp's new ones in; on a failure
    put the old ones back."""
    backup = tmp / ".old"
    backup.mkdir()
    saved: list[str] = []
    placed: list[str] = []
    try:
        for name in OUTPUTS:
            if (out / name).exists() or (out / name).is_symlink():
                os.rename(out / name, backup / name)
                saved.append(name)
        for name in OUTPUTS:
            os.rename(tmp / name, out / name)
            placed.append(name)
    except OSError:
        for name in placed:
            _remove(out / name)
        for name in saved:
            os.rename(backup / name, out / name)
        raise
