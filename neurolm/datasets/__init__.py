"""Adapters for NeuroLM's six downstream datasets (TUAB, TUEV, SEED, HMC, Workload, TUSL).

``get_adapter(name)`` returns a fresh adapter; see :mod:`neurolm.datasets.base`
for the contract and :mod:`neurolm.datasets.splits` for the split rules.
"""

from __future__ import annotations

from neurolm.datasets.base import REFERENCE_COUNTS, DatasetAdapter
from neurolm.datasets.hmc import HMC
from neurolm.datasets.seed import SEED
from neurolm.datasets.tuab import TUAB
from neurolm.datasets.tuev import TUEV
from neurolm.datasets.tusl import TUSL
from neurolm.datasets.workload import Workload
from neurolm.errors import ConfigError

DATASETS = ("tuab", "tuev", "seed", "hmc", "workload", "tusl")
_ADAPTERS: dict[str, type[DatasetAdapter]] = {"tuab": TUAB, "tuev": TUEV, "seed": SEED, "hmc": HMC,
                                              "workload": Workload, "tusl": TUSL}


def get_adapter(name: str, **options) -> DatasetAdapter:
    """Adapter for `name` (case-insensitive); options: ``mode`` for TUEV ("dedup"|"reference")."""
    key = str(name).lower()
    if key not in _ADAPTERS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if options and key != "tuev":
        raise ConfigError(f"dataset {key} takes no options, got {sorted(options)}")
    return _ADAPTERS[key](**options)


__all__ = ["DATASETS", "REFERENCE_COUNTS", "DatasetAdapter", "get_adapter"]
