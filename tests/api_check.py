"""Clean-virtualenv check of the public API (`make api-check`; about a minute, mostly pip).

Builds the wheel, checks that it adds exactly one top-level name (`servingstack`: no generic module
such as `components`, the source folder's name), creates a fresh virtualenv, installs only that
wheel into it (with its declared dependencies and nothing else), and from a directory outside the
checkout:
  1. runs `python -c "from servingstack import <every public name>"` and checks that no module
     named `components` is importable there;
  2. builds the component package's schema there and compares it with tests/golden/schema.json.
Prints the time of each step; exits non-zero on any failure.
"""

import json
import zipfile
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step(title: str, cmd: list[str], cwd: Path) -> str:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    print(f"{time.perf_counter() - start:6.1f} s  {title}")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"api-check failed: {title}")
    return proc.stdout


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from servingstack import __all__ as public_names

    with tempfile.TemporaryDirectory(prefix="servingstack-api-") as tmp:
        work = Path(tmp)
        venv = work / "venv"
        python = venv / "bin" / "python"
        total = time.perf_counter()
        step("create virtualenv", [sys.executable, "-m", "venv", str(venv)], work)
        step("build the wheel", [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                                  "--disable-pip-version-check", "-w", str(work / "dist"), str(ROOT)], work)
        wheel = next((work / "dist").glob("servingstack-*.whl"))
        top_level = sorted({name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()
                            if not name.split("/")[0].endswith((".dist-info", ".data"))})
        if top_level != ["servingstack"]:
            raise SystemExit(f"api-check failed: the wheel adds top-level names {top_level}, not only servingstack")
        print(f"          the wheel adds one top-level name: {top_level[0]}")
        if "servingstack/tools/replacement_rules.yaml" not in zipfile.ZipFile(wheel).namelist():
            raise SystemExit("api-check failed: the wheel lacks servingstack/tools/replacement_rules.yaml "
                             "(servingstack diff's data; pyproject package-data)")
        step("pip install <wheel> (package and its dependencies only)",
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              # No byte-compiling of the dependencies' tens of thousands of modules (pulumi_aws alone
              # has ~5,000): half of the install's time, and the import below compiles what it uses.
              "--no-compile", str(wheel)], work)
        names = ", ".join(public_names)
        step(f"python -c 'from servingstack import ...' ({len(public_names)} public names)",
             [str(python), "-c", f"from servingstack import {names}; import servingstack; "
                                 f"assert sorted(servingstack.__all__) == {sorted(public_names)!r}; "
                                 f"assert 'site-packages' in servingstack.__file__, servingstack.__file__; "
                                 "import importlib.util; assert importlib.util.find_spec('components') is None, "
                                 "'a top-level module named components is installed'"], work)
        schema = step("build the package schema in the clean virtualenv",
                      [str(python), "-m", "servingstack.tools.package"], work)
        if json.loads(schema) != json.loads((ROOT / "tests" / "golden" / "schema.json").read_text()):
            raise SystemExit("api-check failed: the installed package's schema differs from tests/golden/schema.json")
        print(f"{time.perf_counter() - total:6.1f} s  total: every public name imports from a clean install, "
              "schema matches the snapshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
