"""A planted secret value never appears in plaintext anywhere in synth output.

Two ways a secret reaches synth: (a) a stack file's `secure:` ciphertext, which synth cannot decrypt;
(b) the harness playing the engine, handing the program decrypted values. Neither may leak into
manifests, plan.json, outputs.json, the recorded resources or the console.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator

import pulumi
import pytest

from servingstack.tools import cli
from servingstack.config import REDACTED, ConfigError, parse_stack_config, require_secret, secret_needed
from servingstack.tools.output import write_outputs
from servingstack.tools.synth import engine_config
from conftest import set_key, stack_config, synth_config, write_stack_file

CIPHERTEXT = "v1:PLANTEDCIPHERTEXT/AAABAKEDxyz0123456789+ngc=="
NGC_KEY = "nvapi-PLANTED-123"
HF_TOKEN = "hf_PLANTED_456"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(secret: str) -> set[str]:
    """The plaintext and the encodings a Kubernetes Secret or docker config would carry."""
    return {secret, b64(secret), b64(f"$oauthtoken:{secret}")}


def files_under(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def assert_absent(texts: set[str], where: dict[str, str]) -> None:
    for name, content in where.items():
        for text in texts:
            assert text not in content, f"{text!r} leaked into {name}"


def secret_manifests(out: Path) -> list[dict[str, Any]]:
    import yaml

    docs = [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").glob("secret-*.yaml"))]
    return [d for d in docs if d.get("kind") == "Secret"]


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]


def assert_secret_payloads_redacted(out: Path, expected_keys: set[str]) -> None:
    secrets = secret_manifests(out)
    payload_keys = set()
    for doc in secrets:
        payload = {**(doc.get("stringData") or {}), **(doc.get("data") or {})}
        assert payload, f"Secret {doc['metadata']['name']} has no payload to check"
        payload_keys |= set(payload)
        assert leaves(payload) and all(v == REDACTED for v in leaves(payload)), doc
    assert expected_keys <= payload_keys


# ---- (a) a secure: value in the stack file ------------------------------------------------------

def test_secure_ciphertext_never_appears_in_synth_output(tmp_path, capfd):
    cfg = stack_config("dev")
    assert cfg["servingstack:serving"]["stack"] == "nim"
    cfg["servingstack:ngcApiKey"] = {"secure": CIPHERTEXT}
    path = write_stack_file(tmp_path, cfg, "dev")
    out = tmp_path / "out"

    rc = cli.main(["synth", "--config", str(path), "--out", str(out)])
    stdout, stderr = capfd.readouterr()

    assert rc == cli.EXIT_OK, stderr
    written = {str(p.relative_to(out)): p.read_text() for p in files_under(out)}
    assert {"plan.json", "outputs.json"} <= written.keys()
    assert any(name.startswith("manifests/secret-") for name in written)
    needles = forms(CIPHERTEXT) | {"PLANTEDCIPHERTEXT"}
    assert_absent(needles, {**written, "stdout": stdout, "stderr": stderr})
    # The NGC pull secret and the NGC_API_KEY secret carry only the marker.
    assert_secret_payloads_redacted(out, {".dockerconfigjson", "NGC_API_KEY"})
    assert "servingstack:ngcApiKey" in stderr and REDACTED in stderr  # the notice says what synth did


# ---- (b) decrypted secrets handed to the program (the engine's role) ----------------------------

@pytest.mark.parametrize("stack", ["dev", "prod", "staging"])
def test_decrypted_secrets_never_appear_in_written_files_or_outputs(stack, tmp_path):
    result = synth_config(stack_config(stack), stack, secrets={"ngcApiKey": NGC_KEY, "hfToken": HF_TOKEN})
    out = tmp_path / "out"
    write_outputs(result, out)

    needles = forms(NGC_KEY) | forms(HF_TOKEN) | {"PLANTED"}
    written = {str(p.relative_to(out)): p.read_text() for p in files_under(out)}
    assert {"plan.json", "outputs.json"} <= written.keys()
    assert_absent(needles, written)
    assert_absent(needles, {"result.outputs": json.dumps(result.outputs, default=str),
                            "recorded resources": repr(result.resources),
                            "notices": "\n".join(result.notices)})

    # The secrets were really used: the stack's credentials exist, holding only the marker.
    used = {k for k, need in secret_needed(parse_stack_config(engine_config(stack_config(stack))[0])).items()
            if need}
    expected = {"ngcApiKey": {".dockerconfigjson", "NGC_API_KEY"}, "hfToken": {"HF_TOKEN"}}
    assert used
    assert_secret_payloads_redacted(out, set().union(*(expected[k] for k in used)))

    outputs = json.loads(written["outputs.json"])
    assert outputs["kubeconfig"] == REDACTED
    assert result.outputs["kubeconfig"] == REDACTED


# ---- under the engine: a missing or plaintext secret is a one-line ConfigError ------------------

@pytest.fixture
def engine_config_reset():
    yield pulumi.runtime.set_all_config
    pulumi.runtime.set_all_config({}, [])


def test_missing_secret_names_the_set_secret_command(engine_config_reset):
    config, _, _ = engine_config(stack_config("dev"))
    engine_config_reset(config, [])
    cfg = parse_stack_config(config)
    assert secret_needed(cfg)["ngcApiKey"]

    with pytest.raises(ConfigError) as info:
        require_secret("ngcApiKey")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("servingstack:ngcApiKey: ")
    assert "pulumi config set --secret servingstack:ngcApiKey" in message
    assert isinstance(info.value, pulumi.RunError)


def test_plaintext_secret_is_refused_without_echoing_it(engine_config_reset):
    config, _, _ = engine_config(set_key(stack_config("dev"), "servingstack:ngcApiKey", NGC_KEY))
    engine_config_reset(config, [])
    with pytest.raises(ConfigError) as info:
        require_secret("ngcApiKey")
    message = str(info.value)
    assert "plaintext" in message and "pulumi config set --secret servingstack:ngcApiKey" in message
    assert NGC_KEY not in message


def test_secret_config_comes_back_as_a_secret_output(engine_config_reset):
    config, _, _ = engine_config(stack_config("prod"))
    engine_config_reset({**config, "servingstack:hfToken": HF_TOKEN}, ["servingstack:hfToken"])
    output = require_secret("hfToken")
    assert isinstance(output, pulumi.Output)
    assert HF_TOKEN not in repr(output)
