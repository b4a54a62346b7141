"""The README's config reference is generated from the config models and must be current; every key
the models accept is documented with a description."""

from pathlib import Path

from components.configdoc import readme_block, rows

README = Path(__file__).resolve().parent.parent / "README.md"


def test_config_reference_is_current():
    assert readme_block() in README.read_text(), "run `.venv/bin/python -m components.configdoc` and commit README.md"


def test_every_config_key_has_a_description():
    missing = [path for path, _, _, description in rows() if not description.strip()]
    assert not missing, missing


def test_readme_documents_secrets_and_commands():
    text = README.read_text()
    for needle in ("servingstack:ngcApiKey", "servingstack:hfToken", "make synth", "make test",
                   "pulumi config set --secret", "pulumi preview", "pulumi up"):
        assert needle in text
