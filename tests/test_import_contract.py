"""The library stays Prefect-free at run time, not only in its import statements (.importlinter checks those)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib, json, pkgutil, sys
import neurolm
names = sorted(m.name for m in pkgutil.walk_packages(neurolm.__path__, "neurolm.")
               if not m.name.startswith(("neurolm.cli", "neurolm.__main__", "neurolm.demo")))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(m for m in sys.modules
                  if m.split(".")[0] in ("prefect", "prefect_dask", "flows"))}))
"""


def test_importing_every_library_module_loads_no_prefect():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 50  # the walk really found the library
    assert result["loaded"] == []
