"""The example robot loop of the README and docs/python-client.md runs against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servers import ServeProcess

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "robot_loop.py"


def test_the_example_robot_loop_runs(server: ServeProcess) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLE), "--address", server.address, "--steps", "3"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert [line.split(":")[0] for line in out.splitlines()[:3]] == ["step 0", "step 1", "step 2"]
    assert "actions (16, 8)" in out
    assert out.splitlines()[-1] == "episode credited to dust-tiny@1"
