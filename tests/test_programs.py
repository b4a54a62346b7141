"""An offline harness for platform teams' own programs: `servingstack synth/check --program DIR`,
`servingstack.testing`, and Pulumi's standard mocks running the components without a crash."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
import yaml

from servingstack import testing
from servingstack.tools import cli
from conftest import ROOT, STACK_NAMES, stack_config

EXAMPLE = ROOT / "examples" / "existing-cluster-py"
EXAMPLE_EXPORTS = {
    "endpoint": "http://llm.llm.svc.cluster.local:8000",
    "openaiBaseUrl": "http://llm.llm.svc.cluster.local:8000/v1",
    "nodeGroup": "gpu-pool-ng",
    "devicePlugin": "nvidia-device-plugin 0.17.4 on pools l40s",
}


def test_synth_program_writes_the_programs_project_and_exports(tmp_path):
    """`servingstack synth --program examples/existing-cluster-py`, as a user runs it (default output
    folder build/<project>-<stack>, stack `dev` from the example's only stack file)."""
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "synth", "--program", str(EXAMPLE)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "build" / "existing-cluster-py-dev"
    assert json.loads((out / "outputs.json").read_text()) == EXAMPLE_EXPORTS
    plan = json.loads((out / "plan.json").read_text())
    assert (plan["project"], plan["stack"]) == ("existing-cluster-py", "dev")
    assert plan["resources"] and all(r["urn"].startswith("urn:pulumi:dev::existing-cluster-py::")
                                     for r in plan["resources"])
    group = next(r for r in plan["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup")
    assert group["inputs"]["clusterName"] == "my-cluster"  # from the example's Pulumi.dev.yaml
    kinds = {yaml.safe_load(p.read_text()).get("kind") for p in (out / "manifests").glob("*.yaml")}
    assert {"Deployment", "Service", "Namespace", "Secret", "NetworkPolicy"} <= kinds
    assert "project existing-cluster-py, stack dev" in proc.stdout
    assert "endpoint = http://llm.llm.svc.cluster.local:8000" in proc.stdout
    # The example requires hfToken for its gated model; unset, it becomes a placeholder with a notice.
    assert "existing-cluster-py:hfToken is not set; synth uses the placeholder" in proc.stderr


def test_check_program_passes_the_example(tmp_path, capfd):
    rc = cli.main(["check", "--program", str(EXAMPLE), "--out", str(tmp_path / "out")])
    out, err = capfd.readouterr()
    assert rc == 0, out + err
    assert "project existing-cluster-py, stack dev (policies at prod levels, Kubernetes 1.35)" in out
    assert " 0 failed" in out
    assert "k8s-no-plaintext-secrets" in out and "schema" in out


def write_program(root: Path, main: str, project: dict | None = None, stacks: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(project or {"name": "team", "runtime": "python"}))
    (root / "__main__.py").write_text(main)
    for stack, config in (stacks or {}).items():
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root


CONFIG_PROGRAM = """
import pulumi
config = pulumi.Config()
pulumi.export("size", config.require_int("size"))
pulumi.export("name", config.get("name"))
pulumi.export("region", pulumi.Config("aws").get("region"))
pulumi.export("project", pulumi.get_project())
pulumi.export("local", __import__("helper").VALUE)
"""


def test_program_config_stack_file_over_project_defaults(tmp_path):
    root = write_program(tmp_path / "p", CONFIG_PROGRAM,
                         {"name": "team", "runtime": {"name": "python"},
                          "config": {"size": {"type": "integer", "default": 2}, "name": {"default": "a"},
                                     "aws:region": "eu-west-1"}},
                         {"prod": {"team:size": 5}, "dev": {}})
    (root / "helper.py").write_text("VALUE = 'from the program folder'\n")
    prod = testing.synth_program(root, "prod")
    assert prod.outputs == {"size": 5, "name": "a", "region": "eu-west-1", "project": "team",
                            "local": "from the program folder"}
    assert testing.synth_program(root, "dev").outputs["size"] == 2
    assert testing.synth_program(root, "dev", config={"size": 7}).outputs["size"] == 7


@pytest.mark.parametrize("problem, expected", [
    ("no-project", "no Pulumi.yaml — --program takes the folder of a Pulumi project"),
    ("nodejs", "runtime 'nodejs' — --program runs Python programs only"),
    ("no-namespace", "size: a stack config key needs a namespace, e.g. team:size"),
    ("missing-config", "team:size: missing required configuration"),
    ("no-main", "does not exist"),
])
def test_program_errors_are_one_line(tmp_path, capfd, problem, expected):
    root = tmp_path / "p"
    project = {"name": "team", "runtime": "nodejs" if problem == "nodejs" else "python"}
    if problem == "no-main":
        project["main"] = "src/"
    write_program(root, CONFIG_PROGRAM, project, {"dev": {"size": 1} if problem == "no-namespace" else {}})
    if problem == "no-project":
        (root / "Pulumi.yaml").unlink()
    rc = cli.main(["synth", "--program", str(root), "--out", str(tmp_path / "out")])
    _, err = capfd.readouterr()
    assert rc == cli.EXIT_CONFIG
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and expected in err, err
    assert not (tmp_path / "out").exists()


def load_example():
    spec = importlib.util.spec_from_file_location("example_for_testing", EXAMPLE / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_testing_run_gives_the_recorded_resources_under_the_programs_project():
    result = testing.run(load_example().main, project="infra", stack="ci",
                         config={"clusterName": "team-a", "aws:region": "us-west-2", "instanceType": "g6e.xlarge"},
                         secrets={"hfToken": "hf_test_token"})
    assert (result.project, result.stack) == ("infra", "ci")
    assert result.outputs == EXAMPLE_EXPORTS
    assert result.one("pulumi:providers:kubernetes").inputs["clusterIdentifier"] == "team-a"
    assert result.one("aws:eks/nodeGroup:NodeGroup").urn == \
        "urn:pulumi:ci::infra::servingstack:index:GpuNodePool$aws:eks/nodeGroup:NodeGroup::gpu-pool-ng"
    assert result.manifest("Secret")["stringData"] == {"HF_TOKEN": testing.REDACTED}
    assert "hf_test_token" not in json.dumps([r.inputs for r in result.resources])


# ---- Pulumi's standard mocks -----------------------------------------------------------------------

class PlainMocks(pulumi.runtime.Mocks):
    """What the Pulumi docs' unit-testing guide writes: inputs back as outputs, invokes answered with
    their arguments; no computed outputs (no cluster endpoint, CA, OIDC issuer, zones)."""

    def new_resource(self, args):
        return [args.name + "_id", args.inputs]

    def call(self, args):
        return args.args


def run_with_plain_mocks(program, config: dict[str, str], project: str, secret_keys: tuple = ()) -> dict:
    from pulumi.runtime import settings

    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(PlainMocks(), project=project, stack="unit", preview=False)
    pulumi.runtime.set_all_config(config, list(secret_keys))
    seen: dict = {}

    @pulumi.runtime.test
    def body():
        outputs = program()
        return pulumi.Output.all(**{k: pulumi.Output.from_input(v) for k, v in outputs.items()}).apply(seen.update)

    body()
    return seen


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_standard_mocks_run_the_platform(stack, caplog):
    from servingstack.program import build
    from servingstack.tools.synth import engine_config

    config, _, _ = engine_config(stack_config(stack))
    config.update({"servingstack:hfToken": "hf_x", "servingstack:ngcApiKey": "nvapi-x"})
    outputs = run_with_plain_mocks(build, config, "servingstack", ("servingstack:hfToken", "servingstack:ngcApiKey"))
    assert outputs["endpoint"].startswith("http://") and outputs["model"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_standard_mocks_run_the_example(caplog):
    outputs = run_with_plain_mocks(load_example().main, {"existing-cluster-py:clusterName": "team-a",
                                                         "existing-cluster-py:hfToken": "hf_x"}, "existing-cluster-py",
                                   ("existing-cluster-py:hfToken",))
    assert outputs["endpoint"] == EXAMPLE_EXPORTS["endpoint"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    from importlib import metadata

    assert capsys.readouterr().out.strip() == f"servingstack {metadata.version('servingstack')}"
