"""Offline synthesis of any Pulumi Python program that uses the components (`--program DIR`).

The program runs in-process under the same recording mocks as the stack synth (offline/recorder.py),
as the Pulumi CLI would run it: with its project's name (Pulumi.yaml `name`), its stack's config
(`Pulumi.<stack>.yaml` in the project's stackConfigDir, `secure:` values replaced by the redaction
marker) on top of the project's config defaults (Pulumi.yaml `config:`), its folder as the working
directory and first on `sys.path`, and `__main__.py` (or the project's `main`) run as `__main__`.
Everything it exports (`pulumi.export`) lands in outputs.json.

A secret the program requires (`config.require_secret`) but the stack does not set is given the
redaction marker, with a notice, as the stack synth does. Any other missing config, a bad
Pulumi.yaml and a component argument error are one-line errors (exit 2).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config import REDACTED
from .offline.recorder import SynthResult, run_program

MAX_PLACEHOLDER_SECRETS = 20


class ProgramError(ValueError):
    """A program folder, project file or stack file that cannot be run (one line)."""


@dataclass
class Program:
    root: Path
    project: str
    main: Path
    stack_dir: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    """Project-level config defaults (Pulumi.yaml `config:`), by full key."""


def load_program(directory: Path) -> Program:
    """The project of a Pulumi Python program folder. Raises ProgramError."""
    root = Path(directory).resolve()
    project_file = next((root / n for n in ("Pulumi.yaml", "Pulumi.yml") if (root / n).is_file()), None)
    if project_file is None:
        raise ProgramError(f"{root}: no Pulumi.yaml — --program takes the folder of a Pulumi project")
    try:
        doc = yaml.safe_load(project_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProgramError(f"{project_file}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not doc["name"]:
        raise ProgramError(f"{project_file}: a Pulumi project file needs a `name:`")
    runtime = doc.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise ProgramError(f"{project_file}: runtime {runtime_name!r} — --program runs Python programs only "
                           "(for Pulumi YAML, check it against the package schema, docs/platform-teams.md)")
    main = root / str(doc.get("main") or ".")
    if main.is_dir():
        main = main / "__main__.py"
    if not main.is_file():
        raise ProgramError(f"{project_file}: the program {main} does not exist")
    project = doc["name"]
    defaults: dict[str, Any] = {}
    for key, spec in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(spec, dict):
            if "default" in spec:
                defaults[full] = spec["default"]
            elif "value" in spec:
                defaults[full] = spec["value"]
        else:
            defaults[full] = spec
    return Program(root, project, main, root / str(doc.get("stackConfigDir") or "."), defaults)


def default_stack(program: Program) -> str:
    """The stack when --stack is not given: the only Pulumi.<stack>.yaml of the project, else `dev`."""
    stacks = sorted(p.name[len("Pulumi."):].rsplit(".", 1)[0] for p in program.stack_dir.glob("Pulumi.*.y*ml")
                    if p.name not in ("Pulumi.yaml", "Pulumi.yml"))
    return stacks[0] if len(stacks) == 1 else "dev"


def program_config(program: Program, stack: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(config as the engine hands it to the program, secret keys, notices) for `stack`."""
    from .synth import engine_config, read_stack_file

    path = next((program.stack_dir / f"Pulumi.{stack}.{ext}" for ext in ("yaml", "yml")
                 if (program.stack_dir / f"Pulumi.{stack}.{ext}").is_file()), None)
    stack_config = read_stack_file(path) if path is not None else {}
    notices = [] if path is not None else [f"notice: no Pulumi.{stack}.yaml in {program.stack_dir}: running "
                                           "with the project's config defaults only"]
    for key in stack_config:
        if ":" not in str(key):
            raise ProgramError(f"{path}: {key}: a stack config key needs a namespace, e.g. {program.project}:{key} "
                               "(the Pulumi CLI refuses keys without one)")
    merged = {**{k: v for k, v in program.defaults.items()}, **stack_config}
    config, secret_keys, secure = engine_config(merged)
    notices += [f"notice: {key} is a `secure:` value synth cannot decrypt; using the placeholder {REDACTED}"
                for key in secure]
    return config, secret_keys, notices


def synth_program(directory: Path, stack: Optional[str] = None, config: Optional[dict[str, Any]] = None,
                  secrets: Optional[dict[str, str]] = None, aws_data: Any = None) -> SynthResult:
    """Run the program in `directory` offline as `stack` and return what it registered and exported.
    `config` (full keys) overrides the stack file; `secrets` (full keys; tests) are handed over as
    secret values; `aws_data` (a recording file or map) answers AWS invokes instead of the shipped
    recording of the stack's region. Raises ProgramError, ConfigError (component arguments),
    pulumi.ConfigMissingError, AwsDataError."""
    import pulumi

    program = load_program(Path(directory))
    stack = stack or default_stack(program)
    values, secret_keys, notices = program_config(program, stack)
    values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()})
    for key, value in (secrets or {}).items():
        values[key] = value
        secret_keys.append(key)
    region = values.get("aws:region", "us-east-1")
    for _ in range(MAX_PLACEHOLDER_SECRETS):
        try:
            result = run_program(lambda: _run_main(program), values, secret_keys, stack, region,
                                 tuple((secrets or {}).values()), project=program.project, aws_data=aws_data)
        except pulumi.ConfigMissingError as exc:
            if not exc.secret or exc.key in values:
                raise
            values[exc.key] = REDACTED
            secret_keys.append(exc.key)
            notices.append(f"notice: {exc.key} is not set; synth uses the placeholder {REDACTED} (under the "
                           f"engine this is an error: run `pulumi config set --secret {exc.key} <value>`)")
            continue
        result.notices = notices
        return result
    raise ProgramError(f"{program.main}: more than {MAX_PLACEHOLDER_SECRETS} required secrets are unset")


def _run_main(program: Program) -> None:
    """Run the program file as `__main__`, from its folder, importing its own modules afresh."""
    before = set(sys.modules)
    cwd, path = os.getcwd(), list(sys.path)
    root = str(program.root.resolve())
    sys.path[:0] = [str(program.main.parent.resolve()), root]
    os.chdir(root)
    try:
        runpy.run_path(str(program.main), run_name="__main__")
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        for name in set(sys.modules) - before:  # the program's own modules: the next run imports them anew
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(root + os.sep):
                del sys.modules[name]


def program_summary(result: SynthResult) -> str:
    counts: dict[str, int] = {}
    for r in result.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    lines = [f"project {result.project}, stack {result.stack}: {len(result.resources)} resources",
             *[f"  {n:3d}  {t}" for t, n in sorted(counts.items())],
             "exports:" if result.outputs else "exports:  none",
             *[f"  {k} = {_short(v)}" for k, v in sorted(result.outputs.items())]]
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    return text if len(text) <= 100 else text[:97] + "..."


def check_program(directory: Path, stack: Optional[str], out_dir: Optional[Path], kubernetes_version: str,
                  environment: str, aws_data: Any = None) -> int:
    """`servingstack check --program`: synth the program (writing out_dir), then the schema, semantic
    and policy checks of `check` (policies at `environment`'s levels); 0 when nothing failed, else 1."""
    from .check import FAIL, NOT_APPLICABLE, PASS, WARN, format_table, policy_rows, semantic_rows, validate_manifests
    from .output import write_outputs
    from .synth import emit_notices

    result = synth_program(directory, stack, aws_data=aws_data)
    out = Path(out_dir or default_out(result))
    write_outputs(result, out)
    emit_notices(result.notices)  # once the outputs are written: a failed run prints one line alone
    rows, objects = validate_manifests(out / "manifests", kubernetes_version)
    rows += semantic_rows(objects)
    rows += policy_rows(result.resources, environment)
    print(format_table(rows))
    counts = {k: sum(1 for r in rows if r.result == k) for k in (PASS, WARN, FAIL, NOT_APPLICABLE)}
    print(f"\nproject {result.project}, stack {result.stack} (policies at {environment} levels, Kubernetes "
          f"{kubernetes_version}): {len(rows)} checks, {counts[PASS]} passed, {counts[WARN]} warnings, "
          f"{counts[FAIL]} failed, {counts[NOT_APPLICABLE]} not applicable; manifests in {out}/manifests")
    return 1 if counts[FAIL] else 0


def default_out(result: SynthResult) -> Path:
    return Path("build") / f"{result.project}-{result.stack}"
