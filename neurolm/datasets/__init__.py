"""Adapters for NeuroLM's six downstream datasets (TUAB, TUEV, SEED, HMC, Workload, TUSL).

``get_adapter(name)`` returns a fresh adapter; see :mod:`neurolm.datasets.base`
for the contract and :mod:`neurolm.datasets.splits` for the split rules.
"""

from __future__ import annotations

from neurolm.datasets.base import REFERENCE_COUNTS, DatasetAdapter
from neurolm.errors import ConfigError

DATASETS = ("tuab", "tuev", "seed", "hmc", "workload", "tusl")


def get_adapter(name: str, **options) -> DatasetAdapter:
    """Adapter for `name` (case-insensitive); options: ``mode`` for TUEV ("dedup"|"reference")."""
    key = str(name).lower()
    if key == "tuab":
        from neurolm.datasets.tuab import TUAB as cls
    elif key == "tuev":
        from neurolm.datasets.tuev import TUEV

        return TUEV(**options)
    elif key == "seed":
        from neurolm.datasets.seed import SEED as cls
    elif key == "hmc":
        from neurolm.datasets.hmc import HMC as cls
    elif key == "workload":
        from neurolm.datasets.workload import Workload as cls
    elif key == "tusl":
        from neurolm.datasets.tusl import TUSL as cls
    else:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if options:
        raise ConfigError(f"dataset {key} takes no options, got {sorted(options)}")
    return cls()


__all__ = ["DATASETS", "REFERENCE_COUNTS", "DatasetAdapter", "get_adapter"]
