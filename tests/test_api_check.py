"""The public API works from a clean virtualenv with only the package installed (tests/api_check.py,
also `make api-check`). Takes about 40-60 s, almost all of it pip installing the dependencies; set
SERVINGSTACK_SKIP_API_CHECK=1 to skip it in a quick local run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("SERVINGSTACK_SKIP_API_CHECK") == "1",
                    reason="SERVINGSTACK_SKIP_API_CHECK=1 (run `make api-check` instead)")
def test_public_api_imports_from_a_clean_virtualenv():
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "api_check.py")], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert "every public name imports from a clean install" in proc.stdout
