"""Where the project is: its root (the folder with Pulumi.yaml) and its stack files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml


def project_root(start: Optional[Path] = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return here


def stacks_dir(root: Path) -> Path:
    try:
        project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    except OSError:
        project = {}
    return root / str(project.get("stackConfigDir", "stacks"))
