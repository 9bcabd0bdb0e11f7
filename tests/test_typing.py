"""mypy in strict mode over lambdad/ (the settings are pyproject.toml's [tool.mypy]): a gate, as the suite's other
checks are. botocore, boto3 and pyroute2 publish no type information and are taken as untyped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_lambdad_type_checks_strictly(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
