"""neurolm: raw EEG archives to a NeuroLM-style EEG-language foundation model.

The library is pure: it never imports Prefect. Orchestration lives in ``flows/``.
"""

__version__ = "0.1.0"
