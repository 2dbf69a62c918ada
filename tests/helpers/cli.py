"""The `cairn` command run from a shell, as a script or a person would."""

import os
import subprocess
import sys
from pathlib import Path

from jobs.queue import settings

ROOT = Path(__file__).resolve().parents[2]
CAIRN = Path(sys.executable).parent / "cairn"


def cairn(*args, check=False, env=None):
    """`cairn ARGS` with this test process's data dir (and no other CAIRN_ setting)."""
    env = env or {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")},
                  "CAIRN_DATA_DIR": str(settings().data_dir)}
    done = subprocess.run([str(CAIRN), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done
