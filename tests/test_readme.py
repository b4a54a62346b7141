"""The README's config reference is generated from the config models and must be current; every key
the models accept is documented with a description."""

from pathlib import Path

from servingstack.config.reference import readme_block, rows

README = Path(__file__).resolve().parent.parent / "README.md"


def test_config_reference_is_current():
    assert readme_block() in README.read_text(), "run `.venv/bin/python -m servingstack.config.reference` and commit README.md"


def test_every_config_key_has_a_description():
    missing = [path for path, _, _, description in rows() if not description.strip()]
    assert not missing, missing


def test_readme_documents_secrets_and_commands():
    text = README.read_text()
    for needle in ("servingstack:ngcApiKey", "servingstack:hfToken", "make synth", "make test",
                   "pulumi config set --secret", "pulumi preview", "pulumi up"):
        assert needle in text


def test_readme_refusal_example_is_the_real_message(tmp_path):
    """The README quotes the TP-1 refusal verbatim; it must match what the CLI prints."""
    import subprocess
    import sys

    # The user's edit of stacks/Pulumi.prod.yaml, so the quoted line names that file, line and column.
    text = (README.parent / "stacks" / "Pulumi.prod.yaml").read_text()
    assert text.count("    tensorParallelSize: 2\n") == 1
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(text.replace("    tensorParallelSize: 2\n",
                                                                       "    tensorParallelSize: 1\n"))
    proc = subprocess.run([sys.executable, "-m", "servingstack.tools.cli", "synth", "--config",
                           "stacks/Pulumi.prod.yaml", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() in README.read_text()
