"""Synthetic EEG and synthetic archives for tests, demos and benchmarks.

Stable API (reused by `neurolm.datasets.synth` to write dataset layouts):

- `synth_signal(n_channels, sfreq, seconds, seed=0, *, ch_names=None, mains_hz=60.0, ...) -> float32 µV`
- `write_recording(path, fmt, data_uv, sfreq, ch_names, *, meas_date=None, mains_hz=None, ch_sfreqs=None) -> Path`
- `write_edf(path, signals, sfreqs, ch_names, *, bdf=False, record_s=1.0, edf_plus=False, record_onsets=None, ...)`
- `write_malformed(path, kind, seed=0) -> MalformedSpec`
- `synth_corpus(out_dir, n_recordings=24, formats=..., minutes=1.0, n_malformed=5, seed=0, mains_hz=60, layout="flat") -> SynthManifest`
"""

from neurolm.synth.cnt_writer import write_cnt
from neurolm.synth.corpus import DEFAULT_FORMATS, LAYOUTS, SynthFile, SynthManifest, synth_corpus
from neurolm.synth.edf_writer import quantisation_step, write_edf
from neurolm.synth.gdf_writer import write_gdf
from neurolm.synth.malformed import MALFORMED_KINDS, SPECS, MalformedSpec, write_malformed
from neurolm.synth.signal import NON_EEG, STANDARD_EEG, default_ch_names, synth_signal
from neurolm.synth.writers import EXTENSION, WRITABLE_FORMATS, write_recording

__all__ = [
    "DEFAULT_FORMATS", "EXTENSION", "LAYOUTS", "MALFORMED_KINDS", "NON_EEG", "SPECS", "STANDARD_EEG", "WRITABLE_FORMATS",
    "MalformedSpec", "SynthFile", "SynthManifest", "default_ch_names", "quantisation_step",
    "synth_corpus", "synth_signal", "write_cnt", "write_edf", "write_gdf", "write_malformed", "write_recording",
]  # fmt: skip
