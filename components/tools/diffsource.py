"""Where `servingstack diff` gets the two sides it compares: a directory of synthesized builds
(`<dir>/<stack>/plan.json` and `outputs.json`, as `make synth` writes them under build/), a git ref
(its stack files synthesized with that ref's own code), or the working tree's stacks synthesized now.

A git ref is checked out into a temporary `git worktree` and synthesized in a subprocess whose
`sys.path` starts with a shim directory holding one symlink, `servingstack` -> `<worktree>/components`:
the base's package is the one imported (the subprocess checks `servingstack.__file__` resolves into
the worktree and refuses otherwise), nothing is installed over the current package, and the base's
own stack files are read (the subprocess runs in the worktree). The third-party packages (pulumi,
pulumi-aws, pydantic, ...) are the current virtualenv's: a base that needs other versions of them is
synthesized with these. The worktree is removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .project import project_root, stacks_dir

RESULT_MARKER = "SERVINGSTACK-DIFF-RESULT "

class DiffSourceError(ValueError):
    """BASE/HEAD is neither a directory of builds nor a git ref (a usage error: exit 2)."""


@dataclass
class Build:
    stack: str
    plan: Optional[dict[str, Any]] = None
    """None: the stack does not exist on this side."""
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    config_error: bool = False


@dataclass
class Side:
    label: str
    builds: dict[str, Build]


def _driver() -> str:
    """The code the subprocess runs, with the base's code first on sys.path: the base's own `synth`
    command for each stack, one result line per stack."""
    return (
        "import json, sys\n"
        "from pathlib import Path\n"
        "shim, tree, out = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3])\n"
        "sys.path.insert(0, str(shim))\n"
        "import servingstack\n"
        "here = Path(servingstack.__file__).resolve()\n"
        "if tree not in here.parents:\n"
        "    print(f'error: the base code was not loaded (servingstack comes from {here})', file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "from servingstack.tools.cli import main\n"
        "for stack in sys.argv[4:]:\n"
        "    try:\n"
        "        rc = main(['synth', '--stack', stack, '--out', str(out / stack)])\n"
        "    except SystemExit as exc:\n"
        "        rc = exc.code if isinstance(exc.code, int) else 1\n"
        "    except Exception as exc:\n"
        "        print(f'error: {type(exc).__name__}: {exc}', file=sys.stderr)\n"
        "        rc = 1\n"
        "    sys.stderr.flush()\n"
        f"    print({RESULT_MARKER!r} + json.dumps({{'stack': stack, 'rc': rc}}), flush=True)\n"
    )


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def load_build_dir(root: Path, stacks: Optional[Sequence[str]] = None) -> dict[str, Build]:
    """`<root>/<stack>/plan.json` (+ outputs.json) for every stack there (or the named ones)."""
    names = list(stacks) if stacks else sorted(p.parent.name for p in root.glob("*/plan.json"))
    builds: dict[str, Build] = {}
    for name in names:
        plan_file = root / name / "plan.json"
        if not plan_file.exists():
            builds[name] = Build(name)
            continue
        plan = _read_json(plan_file)
        if plan is None:
            builds[name] = Build(name, error=f"{plan_file}: not a plan.json written by `servingstack synth`")
            continue
        builds[name] = Build(name, plan, _read_json(root / name / "outputs.json") or {})
    return builds


def stack_names(root: Path) -> list[str]:
    from .synth import stack_name_for

    return sorted(stack_name_for(p) for p in stacks_dir(root).glob("Pulumi.*.yaml"))


def synth_working_tree(stacks: Optional[Sequence[str]] = None, root: Optional[Path] = None) -> dict[str, Build]:
    """The working tree's stack files synthesized now, in this process, with the current code."""
    from ..config import ConfigError
    from .output import _jsonable, plan_json
    from .synth import StackFileError, read_stack_file, synth_stack

    root = root or project_root()
    names = list(stacks) if stacks else stack_names(root)
    builds: dict[str, Build] = {}
    for name in names:
        path = stacks_dir(root) / f"Pulumi.{name}.yaml"
        if not path.exists():
            builds[name] = Build(name)
            continue
        try:
            result = synth_stack(read_stack_file(path), name)
        except (ConfigError, StackFileError) as exc:
            builds[name] = Build(name, error=str(exc), config_error=True)
            continue
        builds[name] = Build(name, json.loads(plan_json(result)), json.loads(json.dumps(_jsonable(result.outputs))))
    return builds


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def resolve_commit(root: Path, ref: str) -> Optional[str]:
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def synth_git_ref(ref: str, stacks: Optional[Sequence[str]] = None, root: Optional[Path] = None,
                  timeout: float = 900) -> Side:
    """Check `ref` out into a temporary worktree and synthesize its stack files with its own code."""
    root = root or project_root()
    commit = resolve_commit(root, ref)
    if commit is None:
        raise DiffSourceError(f"{ref!r} is neither a directory of synthesized builds nor a git ref in {root}")
    tmp = Path(tempfile.mkdtemp(prefix="servingstack-diff-"))
    tree, shim, out = tmp / "base", tmp / "shim", tmp / "build"
    try:
        proc = _git(root, "worktree", "add", "--detach", str(tree), commit)
        if proc.returncode != 0:
            raise RuntimeError(f"git worktree add {ref} failed: {proc.stderr.strip()[-400:]}")
        if not (tree / "components" / "__init__.py").exists():
            raise RuntimeError(f"{ref} has no components/ package: it predates `servingstack diff`")
        shim.mkdir()
        (shim / "servingstack").symlink_to(tree / "components", target_is_directory=True)
        names = list(stacks) if stacks else stack_names(tree)
        present = [n for n in names if (stacks_dir(tree) / f"Pulumi.{n}.yaml").exists()]
        builds = {n: Build(n) for n in names if n not in present}
        if present:
            run = subprocess.run([sys.executable, "-c", _driver(), str(shim), str(tree), str(out), *present],
                                 cwd=tree, capture_output=True, text=True, timeout=timeout, check=False)
            results = {}
            for line in run.stdout.splitlines():
                if line.startswith(RESULT_MARKER):
                    item = json.loads(line[len(RESULT_MARKER):])
                    results[item["stack"]] = item["rc"]
            errors = [l for l in run.stderr.splitlines() if l.startswith("error:")]
            for name in present:
                rc = results.get(name)
                if rc == 0:
                    builds.update(load_build_dir(out, [name]))
                    continue
                detail = "; ".join(errors[-3:]) or run.stderr.strip()[-400:] or f"exit {run.returncode}"
                builds[name] = Build(name, error=f"{ref}: stack {name} does not synthesize with its own code "
                                                 f"(exit {rc if rc is not None else run.returncode}): {detail}")
        return Side(f"{ref} ({commit[:12]})", builds)
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        _git(root, "worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_side(spec: Optional[str], stacks: Optional[Sequence[str]], root: Optional[Path] = None) -> Side:
    """A directory of builds, a git ref, or (spec None) the working tree synthesized now."""
    if spec is None:
        return Side("working tree", synth_working_tree(stacks, root))
    path = Path(spec)
    if path.is_dir():
        return Side(str(path), load_build_dir(path, stacks))
    return synth_git_ref(spec, stacks, root)
