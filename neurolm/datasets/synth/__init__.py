"""Small, faithful imitations of the six downstream dataset layouts, for tests and demos.

``synth_dataset(name, out_dir, seed=0, bad=False) -> dict`` writes the layout
under ``out_dir`` and returns what it wrote, so a test can compute the expected
windows by its own arithmetic: ``{"dataset", "root", "files": [{"path" (relative),
"subject_key", "seconds", and "label"/"official"/"events"/"stages" as the
dataset has them}], "bad": [{"path", "case", "stage"}], ...}``. ``bad=True``
adds the malformed cases real archives contain (renamed folders, missing or
unparsable label files, unknown label codes, events past the end, overlapping
annotations, missing channels); each names the stage that must report it
(``discover``, ``ingest`` = quarantined by the worker, ``windows``).
The ``neurolm synth --dataset NAME OUT_DIR`` command calls this function.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurolm.errors import ConfigError
from neurolm.datasets.synth import other, tuh


def synth_dataset(name: str, out_dir: str | os.PathLike, seed: int = 0, bad: bool = False) -> dict:
    """Write the `name` layout (tuab, tuev, seed, hmc, workload, tusl) under `out_dir`."""

    makers = {"tuab": tuh.synth_tuab, "tuev": tuh.synth_tuev, "tusl": tuh.synth_tusl,
              "seed": other.synth_seed, "hmc": other.synth_hmc, "workload": other.synth_workload}
    key = str(name).lower()
    if key not in makers:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(makers)}")
    root = Path(os.fspath(out_dir))
    root.mkdir(parents=True, exist_ok=True)
    out = makers[key](root, int(seed), bool(bad))
    return {"dataset": key, "root": str(root), **out}


__all__ = ["synth_dataset"]
