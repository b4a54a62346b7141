"""`from servingstack import VllmServer` is typed for mypy (the TYPE_CHECKING imports beside the lazy
loader, the Args TypedDicts, py.typed): mypy reports every argument error of a program, and none in a
correct one (the shipped example and the docs' snippet).

mypy reads the package from the source folder, under its import name, through a symlink on its
path (an editable install's import hook is invisible to mypy). The cloud provider SDKs are not
analyzed, nor pydantic (`follow_imports = skip`: they are typed Any here), which keeps the run short; the
servingstack modules are analyzed for their types but their own errors are not this test's subject
(`follow_imports = silent`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is a dev extra (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent

BAD = '''
import pulumi
import pulumi_kubernetes as k8s

from servingstack import EksCluster, GpuNodePool, NvidiaDevicePlugin, VllmServer

cluster = EksCluster("cluster", {"cluster_name": "team-a", "region": "us-west-2", "create": False})
on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
namespace = k8s.core.v1.Namespace("llm", metadata={"name": "llm"}, opts=on_cluster)
pool = GpuNodePool("gpu", {"cluster_name": cluster.cluster_name, "subnet_ids": cluster.subnet_ids,  # E: typeddict-unknown-key
                           "instance_type": "g6e.xlarge", "desiredSize": 1})
NvidiaDevicePlugin("device-plugin", {"pool_names": "l40s"}, opts=on_cluster)  # E: typeddict-item
VllmServer("vllm", {"namespace": "llm", "model": "meta-llama/Llama-3.1-8B-Instruct",  # E: typeddict-unknown-key
                    "node_labels": pool.labels, "tensor_paralel_size": 1}, opts=on_cluster)
VllmServer("vllm-2", {"namespace": "llm", "replicas": "2",  # E: typeddict-item
                      "model": "meta-llama/Llama-3.1-8B-Instruct", "node_labels": pool.labels}, opts=on_cluster)
VllmServer("vllm-3", {"namespace": "llm", "node_labels": pool.labels}, opts=on_cluster)  # E: typeddict-item
VllmServer("vllm-4", {"namespace": pool.node_group_name,  # E: typeddict-item
                      "model": "meta-llama/Llama-3.1-8B-Instruct", "node_labels": pool.labels}, opts=on_cluster)
reveal_type(VllmServer)  # N: servingstack.serving.vllm.VllmServer
'''

MYPY_INI = """
[mypy]
mypy_path = src
python_version = 3.11
[mypy-servingstack.*]
follow_imports = silent
[mypy-pulumi_aws.*]
follow_imports = skip
[mypy-pulumi_kubernetes.*]
follow_imports = skip
[mypy-pydantic.*,pydantic_core.*,yaml.*]
follow_imports = skip
"""


def snippet() -> str:
    text = (ROOT / "docs" / "platform-teams.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "servingstack.testing" not in b]
    return code


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory) -> tuple[str, int, dict[str, str]]:
    work = tmp_path_factory.mktemp("mypy")
    (work / "src").mkdir()
    (work / "src" / "servingstack").symlink_to(ROOT / "components", target_is_directory=True)
    (work / "mypy.ini").write_text(MYPY_INI)
    files = {"bad.py": BAD, "snippet.py": snippet(),
             "example.py": (ROOT / "examples" / "existing-cluster-py" / "__main__.py").read_text()}
    for name, text in files.items():
        (work / name).write_text(text)
    import os

    cwd = os.getcwd()
    os.chdir(work)
    try:
        stdout, stderr, status = mypy_api.run(["--config-file", "mypy.ini", "--cache-dir", str(work / ".cache"),
                                               "--show-error-codes", "--no-pretty", *files])
    finally:
        os.chdir(cwd)
    assert not stderr, stderr
    return stdout, status, files


def reported(stdout: str, file: str, kind: str = "error") -> dict[int, str]:
    out: dict[int, str] = {}
    for m in re.finditer(rf"^{re.escape(file)}:(\d+): {kind}: (.*)$", stdout, flags=re.M):
        out[int(m.group(1))] = out.get(int(m.group(1)), "") + m.group(2)
    return out


def test_mypy_reports_every_argument_error(mypy_run):
    stdout, status, files = mypy_run
    assert status == 1, stdout
    expected = {i: m.group(1) for i, line in enumerate(files["bad.py"].splitlines(), start=1)
                if (m := re.search(r"# E: ([\w-]+)", line))}
    assert len(expected) >= 4
    errors = reported(stdout, "bad.py")
    assert set(errors) == set(expected), stdout
    for line, code in expected.items():
        assert f"[{code}]" in errors[line], (line, errors[line])
    assert '"desiredSize"' in errors[10] and '"tensor_paralel_size"' in errors[13]
    assert '"replicas" has type "int"' in errors[15] and 'Missing key "model"' in errors[17]
    assert 'has type "Output[str]", TypedDict item "namespace" has type "str"' in errors[18]


def test_the_package_is_typed_not_any(mypy_run):
    stdout, _, _ = mypy_run
    (note,) = reported(stdout, "bad.py", "note").values()
    assert "args: TypedDict(servingstack.serving.vllm.VllmServerArgs, {" in note, note
    assert "'tensor_parallel_size'?: int" in note and note.endswith('-> servingstack.serving.vllm.VllmServer"'), note


def test_mypy_finds_nothing_wrong_in_correct_programs(mypy_run):
    stdout, _, _ = mypy_run
    assert reported(stdout, "example.py") == {}, stdout
    assert reported(stdout, "snippet.py") == {}, stdout
