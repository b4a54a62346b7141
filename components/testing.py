"""Offline tests for your own Pulumi programs that use the servingstack components.

Runs a program in-process under Pulumi's mock runtime, with servingstack's recorder (the one behind
`servingstack synth`): no cloud credentials, Pulumi CLI or cluster. You get back every resource the
program registered (type, name, inputs as the engine receives them, URN, parent, provider,
dependencies, options) and its stack outputs; component argument errors raise at construction as
they would under `pulumi up`. Invokes get obviously fake answers (account 123456789012, names with
"synth-placeholder"); secret values are recorded as "[secret]".

    from servingstack.testing import run, synth_program

    def test_the_program_folder():
        result = synth_program("infra/", stack="dev")   # as `servingstack synth --program infra/ --stack dev`
        pod = result.manifest("Deployment")["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "servingstack.io/pool": "l40s"}
        assert result.outputs["endpoint"] == "http://llm.llm.svc.cluster.local:8000"

    def test_a_function():
        result = run(main, config={"clusterName": "team-a", "aws:region": "us-west-2"},
                     secrets={"hfToken": "hf_test"}, project="infra")
        assert result.one("aws:eks/nodeGroup:NodeGroup").inputs["instanceTypes"] == ["g6e.xlarge"]

Run one program at a time (the mock runtime is process-global), and never write a result obtained
with real secret values anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from .config import REDACTED
from .tools.offline.recorder import RecordedResource, SynthResult, run_program
from .tools.programs import synth_program as _synth_program

__all__ = ["REDACTED", "RecordedResource", "SynthResult", "run", "synth_program"]


def run(program: Callable[[], Optional[Mapping[str, Any]]], *, config: Optional[Mapping[str, Any]] = None,
        secrets: Optional[Mapping[str, str]] = None, project: str = "project", stack: str = "test",
        region: Optional[str] = None) -> SynthResult:
    """Run `program` (a function that creates resources; what it `pulumi.export`s and the dict it
    returns, if any, become the outputs) as stack `stack` of project `project`.

    `config` and `secrets` are the stack's config: a key without a namespace belongs to the project
    (`"clusterName"` is `"<project>:clusterName"`, as `pulumi config set` stores it); values that are
    not strings are passed as JSON, as the engine does. `secrets` are handed over as secret values.
    `region` defaults to `aws:region` from the config, else us-east-1."""
    values = {_full(k, project): _engine(v) for k, v in (config or {}).items()}
    secret_values = {_full(k, project): v for k, v in (secrets or {}).items()}
    values.update(secret_values)
    return run_program(lambda: dict(program() or {}), values, list(secret_values), stack,
                       region or values.get("aws:region", "us-east-1"), tuple(secret_values.values()),
                       project=project)


def synth_program(directory: Union[str, Path], stack: Optional[str] = None, *,
                  config: Optional[Mapping[str, Any]] = None,
                  secrets: Optional[Mapping[str, str]] = None) -> SynthResult:
    """Run the Pulumi Python program in `directory` (its Pulumi.yaml names the project) as `stack`
    (default: its only Pulumi.<stack>.yaml, else dev) with that stack file's config, exactly as
    `servingstack synth --program` does. `config` and `secrets` (keys as in `run`) override it."""
    from .tools.programs import load_program

    project = load_program(Path(directory)).project
    return _synth_program(Path(directory), stack,
                          config={_full(k, project): v for k, v in (config or {}).items()},
                          secrets={_full(k, project): v for k, v in (secrets or {}).items()})


def _full(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _engine(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
