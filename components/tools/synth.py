"""Offline synthesis: run the real program in-process under Pulumi's mock runtime and record every
registered resource (offline/recorder.py). The same recorder backs the tests (tests/conftest.py).

No cloud credentials, Pulumi CLI or kubeconfig are needed: invokes (availability zones, instance
offerings, quotas, AMI releases, add-on versions) are answered from a recording of real AWS answers
(offline/aws/<region>.yaml, or `aws_data`), computed outputs and an adopted cluster that is not
recorded get obviously fake placeholders, and secret config values, which synth cannot decrypt, are
replaced by a redaction marker.

`keep_secrets=True` (tests only; the CLI never sets it) records secret values unwrapped instead of
redacted, so a test can check what a Secret would really carry. Never write such a result out.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..config import NAMESPACE, REDACTED, ConfigError, parse_stack_config, secret_needed
from ..config.load import collecting_notices
from ..config.stackfile import StackFile, StackFileError, read_stack_file as load_stack_file
from .offline.recorder import SynthResult, run_program

__all__ = ["STACK_NAME", "StackFile", "StackFileError", "check_stack_name", "emit_notices", "engine_config",
           "load_stack_file", "parse_stack_file", "read_stack_file", "stack_name_for", "synth_stack"]


def stack_name_for(path: Path) -> str:
    """The stack a stack file belongs to: Pulumi.<stack>.yaml (stack names may contain dots)."""
    m = re.match(r"^Pulumi\.(.+)\.ya?ml$", path.name)
    return m.group(1) if m else path.stem


#: Pulumi stack names: letters, digits, '_', '.' and '-', at most 100 characters.
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)


def check_stack_name(path: Union[str, Path], stack: str) -> None:
    """Refuse a stack name Pulumi would refuse (checked once the file is known to be readable)."""
    from ..config.errors import format_value

    if not STACK_NAME.fullmatch(stack):
        raise StackFileError("", f"{path}: the stack name {format_value(stack)} is not a Pulumi stack name (letters, "
                                 "digits, '_', '.', '-'; at most 100) — name the file Pulumi.<stack>.yaml")


def read_stack_file(path: Union[str, Path]) -> dict[str, Any]:
    """The `config:` map of a Pulumi stack file (config/stackfile.py reads it). Raises StackFileError."""
    return load_stack_file(path).config


def engine_config(stack_config: dict[str, Any]) -> tuple[dict[str, str], list[str], list[str]]:
    """Stack-file values as the engine hands them to a program (strings; objects as JSON), with
    `secure:` values replaced by the redaction marker. Returns (config, secret keys, secure keys)."""
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    secure: list[str] = []
    for key, value in stack_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = REDACTED
            secret_keys.append(key)
            secure.append(key)
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = json.dumps(value)
    return config, secret_keys, secure


def synth_stack(stack_config: Union[dict[str, Any], StackFile], stack: str,
                program: Optional[Callable[[], dict[str, Any]]] = None, secrets: Optional[dict[str, str]] = None,
                keep_secrets: bool = False, aws_data: Any = None) -> SynthResult:
    """Validate and synthesize one stack's config (a config map, or a StackFile whose errors then name
    the file, line and column). `secrets` (tests only) plays the engine's role of handing the program
    decrypted secret values; they never reach the result in plaintext unless `keep_secrets` (tests
    only) asks for secret values unwrapped. `aws_data` (a recording file, or a map in tests) replaces
    the shipped recording of the stack's region. Notices come back in `result.notices`, for the
    caller to print once the whole run has succeeded.
    Raises ConfigError for config mistakes (before anything is registered), AwsDataError for a
    recording that does not fit."""
    if isinstance(stack_config, StackFile):
        try:
            result = synth_stack(stack_config.config, stack, program, secrets, keep_secrets, aws_data)
        except ConfigError as exc:
            raise stack_config.locate(exc) from None
        result.notices = [*stack_config.notices, *result.notices]
        return result
    from ..config.placeholders import find_placeholders
    from ..program import build

    config, secret_keys, secure = engine_config(stack_config)
    notices: list[str] = []
    for key in secure:
        notices.append(f"notice: {key} is a `secure:` value synth cannot decrypt; using the placeholder {REDACTED}")
    for key, value in (secrets or {}).items():
        config[f"{NAMESPACE}:{key}"] = value
        secret_keys.append(f"{NAMESPACE}:{key}")
    cfg = parse_stack_config(config, notices=notices, stack=stack, secret_keys=secret_keys)
    for p in find_placeholders(cfg):
        notices.append(f"notice: {p.full_key} is the documentation value {p.value} ({p.what}); synth keeps "
                       f"it, a real preview or up refuses it — {p.fix}")
    for key, needed in secret_needed(cfg).items():
        full = f"{NAMESPACE}:{key}"
        if needed and full not in config:
            config[full] = REDACTED
            secret_keys.append(full)
            notices.append(f"notice: {full} is not set; synth uses the placeholder {REDACTED} (under the engine this "
                           f"is an error: run `pulumi config set --secret {full} <value>`)")
    with collecting_notices([]):  # the program's own copies of the notices above
        result = run_program(program or build, config, secret_keys, stack, cfg.region,
                             tuple((secrets or {}).values()), keep_secrets=keep_secrets, aws_data=aws_data)
    result.notices = notices
    result.config = cfg
    return result


def emit_notices(notices: list[str]) -> None:
    for n in notices:
        print(n, file=sys.stderr)


class StaleBuildError(RuntimeError):
    """`check --reuse` found no build, or one older than the stack file, or another stack's."""


def reused_build(path: Path, stack: str, out_dir: Path) -> tuple[Any, list[Any]]:
    """(StackConfig, resources) of the files `servingstack synth` wrote to out_dir for this stack file.
    The config is parsed again (cheap, and config errors still exit 2); the resources are plan.json's."""
    from .offline.recorder import RecordedResource

    cfg, notices = parse_stack_file(path, stack)
    plan_file = out_dir / "plan.json"
    if not plan_file.is_file() or not (out_dir / "manifests").is_dir():
        raise StaleBuildError(f"{out_dir}: no synthesized build (plan.json, manifests/): run "
                              f"`servingstack synth --stack {stack} --out {out_dir}` first")
    if plan_file.stat().st_mtime < Path(path).stat().st_mtime:
        raise StaleBuildError(f"{plan_file} is older than {path}: synthesize again (`make synth`)")
    plan = json.loads(plan_file.read_text())
    if plan.get("stack") != stack:
        raise StaleBuildError(f"{plan_file} is stack {plan.get('stack')!r}, not {stack!r}")
    emit_notices(notices)
    return cfg, [RecordedResource.from_plan(r) for r in plan.get("resources", [])]


def parse_stack_file(path: Union[str, Path], stack: str) -> tuple[Any, list[str]]:
    """Read and validate a stack file without synthesizing: (StackConfig, notices). Raises
    ConfigError / StackFileError naming the file, line and column."""
    stack_file = load_stack_file(path)
    check_stack_name(path, stack)
    config, secret_keys, _ = engine_config(stack_file.config)
    notices = list(stack_file.notices)
    try:
        return parse_stack_config(config, notices=notices, stack=stack, secret_keys=secret_keys), notices
    except ConfigError as exc:
        raise stack_file.locate(exc) from None
