"""Property-based fuzzing of the live OpenAPI schema with schemathesis, against a real server:
no server errors, and every answer conforms to the schema (documented status codes, content
types and bodies). Run through schemathesis' own command line (its pytest plugin lags pytest 9)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.conftest import ENGINEER_KEY
from tests.serving.live import serve
from tests.support import make_tiny_bundle

pytestmark = pytest.mark.slow
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_the_api_keeps_its_schema_under_fuzzing(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency: make test installs it"
    bundle = make_tiny_bundle(tmp_path / "tiny").path
    with serve(bundle, tmp_path, "--keep-images", str(tmp_path / "kept"), "--samples-dir",
               str(tmp_path / "samples")) as live:
        run = subprocess.run(
            [st, "run", f"{live.url}/openapi.json", "--checks", CHECKS, "-H", f"X-API-Key: {ENGINEER_KEY}",
             "--max-examples", "25", "--phases", "examples,coverage,fuzzing", "--workers", "2",
             "--suppress-health-check", "all", "--seed", "1", "--request-timeout", "60"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        code, out = live.stop()
    assert code == 0, out[-3000:]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in out, out[-3000:]
