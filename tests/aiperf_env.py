"""The real load generator for the end-to-end benchmark tests: NVIDIA AIPerf from PyPI, the version
the Job's image runs (catalog.AIPERF_VERSION), in its own virtualenv `.venv-aiperf/`.

Why its own virtualenv (like checkov's): aiperf 0.13.0 pins protobuf>=4 with ~140 packages
(transformers, pandas, pyarrow, scipy, dash, ...), ~1.2 GB installed; in the dev extras it would
fight pulumi-policy's protobuf 5.29 pin and double `make install-dev`. Installed with --no-compile
it took 6 min wall / 1.5 min CPU on a loaded 2-core machine, so the test session starts it in the
background as soon as it collects an end-to-end test (conftest.py) and those tests run last;
`make aiperf-venv` does the same in the foreground (`python tests/aiperf_env.py install`).

Every one of its packages is pinned by tests/aiperf-constraints.txt (pip's --constraint), so a clean
clone measures with the same code as this one; the stamp names the constraints' hash, so changing them
reinstalls. To move to a new AIPerf: set catalog.AIPERF_VERSION, install without constraints
(`AIPERF_CONSTRAINTS= python tests/aiperf_env.py install`) and write `pip freeze` of it into the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("AIPERF_VENV", ROOT / ".venv-aiperf"))
#: One log per installer: under pytest-xdist every worker starts one (the lock lets one install).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
LOG = VENV.parent / f"{VENV.name}.install{'-' + _WORKER if _WORKER else ''}.log"
_DEFAULT_CONSTRAINTS = Path(__file__).resolve().parent / "aiperf-constraints.txt"
CONSTRAINTS = Path(os.environ["AIPERF_CONSTRAINTS"]) if os.environ.get("AIPERF_CONSTRAINTS") else (
    None if "AIPERF_CONSTRAINTS" in os.environ else _DEFAULT_CONSTRAINTS)
INSTALL_TIMEOUT_S = 1500


def version() -> str:
    from servingstack.planning.catalog import AIPERF_VERSION

    return AIPERF_VERSION


def constraints_pin() -> str:
    """aiperf's own pin in the constraints file ('' when installing without one)."""
    if CONSTRAINTS is None:
        return ""
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip().lower().startswith("aiperf=="):
            return line.split("==", 1)[1].strip()
    return ""


def stamp() -> Path:
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:12] if CONSTRAINTS else "unpinned"
    return VENV / f".installed-aiperf-{version()}-{digest}"


def executable() -> Optional[Path]:
    """The aiperf entry point when this version is installed, else None."""
    exe = VENV / "bin" / "aiperf"
    return exe if stamp().is_file() and exe.is_file() else None


def install() -> Path:
    """Create the virtualenv and install aiperf==AIPERF_VERSION (one installer at a time)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if executable():
            return executable()  # type: ignore[return-value]
        started = time.monotonic()
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        if CONSTRAINTS is not None and constraints_pin() != version():
            raise SystemExit(f"{CONSTRAINTS} pins aiperf=={constraints_pin() or '(nothing)'}, not the Job's "
                             f"{version()} (catalog.AIPERF_VERSION): regenerate it (see {__file__})")
        pin = ["--constraint", str(CONSTRAINTS)] if CONSTRAINTS is not None else []
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                        "--disable-pip-version-check", *pin, f"aiperf=={version()}"], check=True,
                       timeout=INSTALL_TIMEOUT_S)
        stamp().write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    return VENV / "bin" / "aiperf"


class Background:
    """`install()` in a child process, started once per test session; `wait()` returns the entry
    point or the reason it is unavailable."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        if self.proc is None and executable() is None:
            LOG.parent.mkdir(parents=True, exist_ok=True)
            with open(LOG, "w") as log:
                self.proc = subprocess.Popen([sys.executable, __file__, "install"], stdout=log, stderr=subprocess.STDOUT)

    def wait(self) -> tuple[Optional[Path], str]:
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return None, f"installing aiperf=={version()} took longer than {INSTALL_TIMEOUT_S} s"
            if rc != 0:
                tail = LOG.read_text()[-400:] if LOG.is_file() else ""
                return None, f"installing aiperf=={version()} from PyPI failed (exit {rc}): {tail.strip()}"
        exe = executable()
        return (exe, "") if exe else (None, f"aiperf=={version()} is not installed in {VENV}")


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install())
    else:
        print(f"usage: {sys.argv[0]} install", file=sys.stderr)
        sys.exit(2)
