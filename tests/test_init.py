"""`servingstack init` writes a commented stack file, sized by the planning core, that synthesizes."""

from __future__ import annotations

import json

import pytest
import yaml

from servingstack.planning import catalog
from servingstack.planning.sizing import FitError, ServingShape, check_fit
from servingstack.tools import cli

CASES = [
    ("llama8b", "meta-llama/Llama-3.1-8B-Instruct", "g6e.xlarge", []),
    ("llama70b", "meta-llama/Llama-3.1-70B-Instruct", "p4de.24xlarge", ["--environment", "prod"]),
    ("llama70b-h100", "meta-llama/Llama-3.1-70B-Instruct", "p5.48xlarge", ["--adopt", "team-a"]),
]


def init(capfd, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["init", *argv])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.mark.parametrize("name, model, instance, extra", CASES, ids=[c[0] for c in CASES])
def test_init_output_synthesizes_cleanly(tmp_path, capfd, name, model, instance, extra):
    path = tmp_path / f"Pulumi.{name}.yaml"
    rc, out, err = init(capfd, name, "--model", model, "--instance", instance, "--out", str(path), *extra)
    assert rc == 0, err
    config = yaml.safe_load(path.read_text())["config"]
    serving, pool = config["servingstack:serving"], config["servingstack:gpuNodePool"]
    assert (serving["model"], pool["instanceType"]) == (model, instance)

    rc = cli.main(["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    out, err = capfd.readouterr()
    assert rc == 0, err
    assert all(line.startswith("notice: ") for line in err.splitlines()), err
    outputs = json.loads((tmp_path / "out" / "outputs.json").read_text())
    summary = outputs["gpuSummary"]
    assert summary["instanceType"] == instance
    assert summary["gpusPerReplica"] == serving["tensorParallelSize"]
    assert summary["replicas"] == serving["replicas"] == (2 if "prod" in extra else 1)
    assert summary["gpuNodes"] <= pool["desiredSize"] <= pool["maxSize"]

    # The tensor-parallel size is the smallest the planning core accepts on this instance type.
    arch, hw, tp = catalog.MODELS[model], catalog.INSTANCE_TYPES[instance], serving["tensorParallelSize"]
    shape = lambda t: ServingShape(serving["replicas"], t, serving["maxModelLen"], 0.92)  # noqa: E731
    check_fit(arch, hw, shape(tp))
    for smaller in range(1, tp):
        with pytest.raises(FitError):
            check_fit(arch, hw, shape(smaller))


def test_init_names_the_placeholders_to_fill(tmp_path, capfd):
    path = tmp_path / "Pulumi.new.yaml"
    rc, out, _ = init(capfd, "new", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--out", str(path))
    assert rc == 0
    text = path.read_text()
    config = yaml.safe_load(text)["config"]
    assert config["servingstack:cluster"] == {"name": "new", "publicAccessCidrs": ["203.0.113.0/24"]}
    assert "203.0.113.0/24  # FILL IN" in text
    for key in ("servingstack:cluster.publicAccessCidrs", "servingstack:hfToken"):
        assert f"#   - {key}:" in text and f"FILL IN {key}:" in out
    assert "servingstack:hfToken" not in config  # secrets are set with `pulumi config set --secret`, never written

    adopted = tmp_path / "Pulumi.adopted.yaml"
    rc, out, _ = init(capfd, "x", "--model", "Qwen/Qwen2.5-72B-Instruct", "--adopt", "team-a", "--out", str(adopted))
    assert rc == 0
    config = yaml.safe_load(adopted.read_text())["config"]
    assert config["servingstack:cluster"] == {"create": False, "name": "team-a"}
    assert "FILL IN" not in out and "Nothing to fill in" in adopted.read_text()  # Qwen is not gated


def test_init_picks_the_cheapest_instance_type_the_model_fits():
    """Without --instance: no catalogued type on which check_fit passes costs less per month."""
    from servingstack.tools.init import choose

    for model in catalog.MODELS:
        try:
            chosen = choose(model, None, "dev")
        except Exception:  # noqa: BLE001 - 405B bf16 fits no single node; init says so (below)
            continue
        for hw in catalog.INSTANCE_TYPES.values():
            fits = any(_fits(catalog.MODELS[model], hw, t) for t in range(1, hw.gpus + 1))
            if fits:
                assert chosen.monthly_usd <= hw.on_demand_usd_per_hour * catalog.HOURS_PER_MONTH + 1e-6, (model, hw.name)


def _fits(model, hw, tp) -> bool:
    try:
        check_fit(model, hw, ServingShape(1, tp, 8192, 0.92))
        return True
    except FitError:
        return False


@pytest.mark.parametrize("argv, expected", [
    (["x", "--model", "meta-llama/Llama-3.1-8B-Instruc"], "did you mean 'meta-llama/Llama-3.1-8B-Instruct'?"),
    (["x", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--instance", "g6e.xlarg"], "did you mean 'g6e.xlarge'?"),
    (["x", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--instance", "g6e.xlarge"],
     "does not fit on one g6e.xlarge at any tensor-parallel size — use one of"),
    (["x", "--model", "meta-llama/Llama-3.1-405B-Instruct"], "use the fp8 checkpoint"),
    (["bad name", "--model", "meta-llama/Llama-3.1-8B-Instruct"], "NAME 'bad name'"),
])
def test_init_refusals_are_one_line(tmp_path, capfd, argv, expected):
    rc, _, err = init(capfd, *argv, "--out", str(tmp_path / "Pulumi.x.yaml"))
    assert rc == cli.EXIT_CONFIG
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "Pulumi.x.yaml").exists()


def test_init_never_overwrites_without_force(tmp_path, capfd):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: {}\n")
    rc, _, err = init(capfd, "x", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--out", str(path))
    assert rc == cli.EXIT_CONFIG and "exists — pass --force" in err
    assert path.read_text() == "config: {}\n"
    rc, _, _ = init(capfd, "x", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--out", str(path), "--force")
    assert rc == 0 and "servingstack:serving" in path.read_text()


def test_init_writes_into_the_projects_stack_folder(tmp_path, capfd, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text("name: servingstack\nruntime: python\nstackConfigDir: stacks\n")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = init(capfd, "team-a", "--model", "mistralai/Mistral-7B-Instruct-v0.3", "--stack", "dev-team-a")
    assert rc == 0
    assert (tmp_path / "stacks" / "Pulumi.dev-team-a.yaml").is_file()
