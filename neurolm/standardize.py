"""Signal standardization: NeuroLM's filter -> notch -> resample -> µV/100, fast.

NeuroLM (reference §1.1) runs, with MNE: ``raw.filter(0.1, 75)`` (default FIR:
a 33-s Hamming-windowed firwin kernel because of the 0.1 Hz transition band),
``raw.notch_filter(f)`` (FIR band-stop), ``raw.resample(200)`` (FFT) and divides
by 100. Three passes, each padding and transforming the whole channel.

Everything in that chain is linear and zero-phase, so it collapses into one
frequency response. ``standardize`` does a *single FFT pass per channel block*:

1. pad each channel like MNE (odd reflection, ``reflect_limited``) by at least
   the combined kernel half-length, to a length N that is FFT-friendly and a
   multiple of the resampling denominator (200/256 = 25/32 -> N % 32 == 0);
2. ``rfft`` (float32), multiply the bins below the new Nyquist by
   H = H_bandpass * H_notch, where H_* is the exact DFT of MNE's own kernels
   (``mne.filter.create_filter``), so the interior matches MNE to float32
   precision;
3. ``irfft`` onto N * 200/fs points -- that *is* the FFT resample -- cut the
   padding off, scale by N_out/N / unit_divisor.

Channels are centred first (exact: the band-pass has zero DC gain; the mean is
added back times the DC gain when no high-pass is configured), which keeps the
float32 transforms precise under large electrode offsets.

Deviation from MNE, on purpose: MNE's resample pads to a power of two and
rounds the output length, which stretches time by up to 0.5/N_out (a drift of up
to ~0.4 output samples at the end of a 250/500/1000 Hz recording -- visible as
a large sample-wise difference at 60-75 Hz). We use the exact rational ratio.
``mne_reference_chain(exact_ratio=True)`` picks MNE's ``npad`` so that MNE's
ratio is exact too; that is what the tolerance tests and the bench compare to.
Rates whose ratio to 200 Hz is not a fraction with a denominator <= 4096 (e.g.
173.61 Hz) get a rounded output length, like MNE.

Agreement with MNE (tests/test_standardize.py, bench/bench_standardize.py):
max |ours - mne| / RMS < 2e-4 more than 20 s from either end (measured
2e-5..1e-4, i.e. < 0.005 µV, far below the store's 0.1 µV int16 step);
< 3e-3 from 2 s; up to ~1.4e-2 in the first/last 0.5 s at 1000 Hz, because MNE
reflects the filtered signal again before the notch and the resample while the
single pass reflects the raw signal once.

Recordings no longer than half the band-pass kernel (16.5 s at 0.1 Hz) are
far outside these bounds (whole-recording max deviation / RMS ~0.56 at 10 s,
~0.09 at 15 s): MNE then zero-pads past its limited reflection in each pass.
They are stored and flagged ``short_edge_effects`` (:func:`short_for_filters`).

Input rates at or below 2 x h_freq (e.g. 128 Hz): MNE refuses the low-pass;
we skip it (flag ``lowpass_skipped``) and upsample (flag ``upsampled``).

Speed (bench/results_standardize.md): 6-11x NeuroLM's MNE chain per core at
250-1000 Hz, ~1.5-2 EEG-hours of 23-channel 250/256 Hz EEG per core-second.

Memory: channels are processed in blocks so the working set beyond the input
and output arrays is O(block_channels x N) (``_BLOCK_BYTES``), whatever the
number of channels (1 h x 23 ch at 256 Hz: ~90 MiB beyond the output). The
input and output arrays themselves grow with the recording (a worker ingesting
a 64-channel 256 Hz file whole peaks at ~0.7 GB per hour). Recordings with more
than ``standardize_stream.STREAM_MIN_VALUES`` values (64 Mi: ~1.1 h of 64
channels, ~3.2 h of 23 channels at 256 Hz) are therefore standardized in time
blocks by :mod:`neurolm.standardize_stream` (overlap-save with margins of this
same padding, identical reflection at the file ends; equal to this path within
1e-4 x RMS, measured < 1e-5) and written block by block, so a worker's memory
stays bounded (~0.4 GB of working set) whatever the length. Shorter recordings
stay on this whole-file path, which is faster for them.

Default notch 60 Hz: TUH -- the bulk of the pretraining corpus -- is US data and
NeuroLM's TUH pretraining script notches at 60 Hz. Other datasets override it
through their ``SourceItem.notch_hz`` (NeuroLM used 50 Hz for SEED, HMC,
Workload, and -- inherited from LaBraM/BIOT -- for the US TUAB/TUEV too).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy import fft as sfft
from scipy.signal import fftconvolve

from neurolm import quality
from neurolm.errors import BadInputError, ConfigError
from neurolm.readers.types import RawRecording
from neurolm.threads import process_thread
from neurolm.vocab import ChannelSelection

ALGORITHM_REVISION = "fft-single-pass-1"  # part of config_hash: a new algorithm is a new store version
NO_NOTCH = 0.0  # pass as the notch_hz override to disable the notch for one recording
_BLOCK_BYTES = 128 * 2**20  # FFT working set per channel block (float32 buffer + complex64 spectrum)
_FFT_ROWS = 8  # pocketfft transforms rows in SIMD groups: 8 rows cost ~5.5 one-row transforms (bench/results_ingest_cli.md)
_CACHE_MAX_FFT = 2**22  # responses of longer transforms (> ~5 h at 256 Hz) are not cached


class StandardizeConfig(BaseModel):
    """How every recording of a store version is standardized (hashed into the version id)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    sfreq: float = Field(200.0, gt=0, description="output rate (NeuroLM: 200 Hz, 1-s patches of 200 samples)")
    l_freq: float | None = Field(0.1, gt=0)
    h_freq: float | None = Field(75.0, gt=0)
    notch_hz: float | None = Field(60.0, ge=0, description="mains notch; 0/None disables; per-dataset override")
    unit_divisor: float = Field(100.0, gt=0, description="store/model unit = µV / unit_divisor")
    min_duration_s: float = Field(10.0, ge=0, description="shorter (after cropping) -> BadInputError")
    min_sfreq: float = Field(100.0, gt=0, description="slower input -> BadInputError (Sleep-EDF EEG is 100 Hz)")
    crop_end_s: float = Field(0.0, ge=0, description="seconds cut from the end of every recording")
    method: Literal["fft", "mne"] = Field("fft", description="'mne' runs NeuroLM's literal MNE chain")
    flat_uv: float = Field(0.1, ge=0, description="channel std below this (µV) -> flat")
    clip_fraction: float = Field(0.001, gt=0, le=1, description="share of samples on max/min -> clipped")
    clip_min_samples: int = Field(10, ge=1)
    extreme_uv: float = Field(800.0, gt=0, description="robust amplitude (p99 |x|, µV) above -> extreme")
    nan_max_fraction: float = Field(0.5, ge=0, le=1, description="more non-finite than this -> channel dead")
    mostly_flat_fraction: float = Field(0.5, gt=0, le=1)

    @field_validator("notch_hz")
    @classmethod
    def _zero_is_off(cls, v: float | None) -> float | None:
        return v or None  # 0 and None mean the same: one spelling, one config hash

    @model_validator(mode="after")
    def _check_bands(self) -> StandardizeConfig:
        nyq = self.sfreq / 2
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")
        if self.h_freq is not None and self.h_freq >= nyq:
            raise ValueError(f"h_freq ({self.h_freq}) must be below the output Nyquist ({nyq})")
        if self.notch_hz and self.notch_hz >= nyq:
            raise ValueError(f"notch_hz ({self.notch_hz}) must be below the output Nyquist ({nyq})")
        return self

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None = None, **kwargs: Any) -> StandardizeConfig:
        """Build from user input; any problem is one ``ConfigError`` naming the fields."""
        try:
            return cls(**{**(data or {}), **kwargs})
        except ValidationError as exc:
            parts = [f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("invalid standardize config: " + "; ".join(parts)) from None

    def config_hash(self) -> str:
        """sha256[:16] of the canonical JSON of the config plus the algorithm revision."""
        payload = {"algorithm": ALGORITHM_REVISION, **self.model_dump(mode="json")}
        canon = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class StandardizedRecording:
    """One recording in model units at ``sfreq``, ready for the signal store.

    ``flags``: per-channel flags as ``"<flag>:<CH>"`` plus recording-level
    flags (``clipped``, ``nan_repaired``, ``dead``, ``extreme``, ``mostly_flat``,
    ``lowpass_skipped``, ``upsampled``); see ``neurolm.quality``.
    """

    data: np.ndarray  # float32 [n_ch, n], µV / unit_divisor
    ch_names: tuple[str, ...]  # vocabulary names
    ch_indices: tuple[int, ...]  # vocabulary indices
    orig_sfreq: float
    duration_s: float
    channel_flags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    sfreq: float = 200.0


# --------------------------------------------------------------------------- filter design


@lru_cache(maxsize=32)
def _kernels(fs: float, l_freq: float | None, h_freq: float | None, notch: float | None
             ) -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """MNE's own FIR kernels for this input rate (exactly what NeuroLM's chain applies)."""
    from mne.filter import create_filter

    flags: list[str] = []
    if h_freq is not None and h_freq >= fs / 2:
        h_freq = None  # MNE would refuse; a 128 Hz file has nothing above 64 Hz anyway
        flags.append("lowpass_skipped")
    kernels = []
    try:
        if l_freq is not None or h_freq is not None:
            kernels.append(create_filter(None, fs, l_freq, h_freq, verbose=False))
        if notch:
            nw, tb2 = notch / 200.0, 0.5  # notch_filter defaults: notch_widths=f/200, trans_bandwidth=1
            if notch + nw / 2 + tb2 < fs / 2:
                kernels.append(create_filter(None, fs, notch + nw / 2 + tb2, notch - nw / 2 - tb2,
                                             l_trans_bandwidth=tb2, h_trans_bandwidth=tb2, verbose=False))
    except ValueError as exc:  # e.g. a rate just above 2 x h_freq with no room for a transition band
        raise BadInputError(f"cannot design the filters at {fs:g} Hz: {exc}") from None
    return tuple(kernels), tuple(flags)


@lru_cache(maxsize=8)
def _response(fs: float, l_freq: float | None, h_freq: float | None, notch: float | None,
              n_fft: int, n_bins: int) -> np.ndarray:
    """Real zero-phase response of the combined kernel on the first n_bins rfft bins."""
    kernels, _ = _kernels(fs, l_freq, h_freq, notch)
    if not kernels:
        return np.ones(n_bins, np.float32)
    h = kernels[0]
    for k in kernels[1:]:
        # one combined zero-phase kernel; direct convolution is quadratic in the rate (kernels grow with it),
        # so long kernels (rates of several kHz) go through the FFT
        h = np.convolve(h, k) if len(h) * len(k) <= 2 * 10**9 else fftconvolve(h, k)  # direct up to ~3 kHz
    c = (len(h) - 1) // 2
    centered = np.zeros(n_fft)
    centered[: c + 1] = h[c:]
    centered[n_fft - c:] = h[:c]
    out = sfft.rfft(centered, workers=1)[:n_bins].real.astype(np.float32)
    out.flags.writeable = False
    return out


def _dc_gain(fs: float, l_freq: float | None, h_freq: float | None, notch: float | None) -> float:
    """Gain of the combined filter at 0 Hz (0 with a high-pass, ~1 without)."""
    kernels, _ = _kernels(fs, l_freq, h_freq, notch)
    return float(np.prod([h.sum() for h in kernels])) if kernels else 1.0


def _ratio(fs: float, target: float) -> tuple[int, int]:
    """(up, down): target/fs as a small fraction; (0, 0) when not rational enough."""
    r = Fraction(target).limit_denominator(10**6) / Fraction(fs).limit_denominator(10**6)
    if r.denominator > 4096 or abs(float(r) - target / fs) > 1e-12:
        return 0, 0
    return r.numerator, r.denominator


def _reflect_in_place(buf: np.ndarray, left: int, n: int, right: int) -> None:
    """MNE's ``_smart_pad(..., 'reflect_limited')`` around buf[:, left:left+n], in place.

    Odd reflection about each end sample (value and slope stay continuous);
    beyond one signal length the padding stays zero, as in MNE.
    """
    x = buf[:, left:left + n]
    lr, rr = min(left, n - 1), min(right, n - 1)
    if lr > 0:
        buf[:, left - lr:left] = 2 * x[:, :1] - x[:, lr:0:-1]
    if rr > 0:
        buf[:, left + n:left + n + rr] = 2 * x[:, -1:] - x[:, -2:-rr - 2:-1]


@dataclass(frozen=True)
class _Plan:
    pad: int
    n_fft: int
    n_out_fft: int
    out_start: int
    n_out: int


def fft_rows(n_fft: int) -> int:
    """Channels transformed together: as many as ``_BLOCK_BYTES`` holds, in whole SIMD groups when it can.

    pocketfft runs several rows' transforms in one vector pass (``_FFT_ROWS`` at a time), each lane
    doing a row's own arithmetic, so the output does not depend on the grouping; a 6-row block of a
    1-hour file is 4 vectorized rows + 2 single ones, an 8-row block 8 vectorized ones (-30 %).
    """
    rows = max(1, _BLOCK_BYTES // (n_fft * 16))
    return rows - rows % _FFT_ROWS if rows >= _FFT_ROWS else (rows - rows % 4 if rows >= 4 else rows)


def _plan(n: int, fs: float, target: float, half: int) -> _Plan:
    up, down = _ratio(fs, target)
    step = down if up else 1
    pad = -(-max(half, 1) // step) * step
    n_fft = step * sfft.next_fast_len(-(-(n + 2 * pad) // step), real=True)
    if up:
        n_out_fft, out_start = n_fft // down * up, pad // down * up
    else:  # irrational ratio: round like MNE does
        n_out_fft, out_start = round(n_fft * target / fs), round(pad * target / fs)
    n_out = max(int(round(n * target / fs)), 1)
    return _Plan(pad, n_fft, n_out_fft, out_start, min(n_out, n_out_fft - out_start))


# --------------------------------------------------------------------------- standardize


def _check_input(raw: RawRecording, selection: ChannelSelection) -> None:
    if not np.isfinite(raw.sfreq) or raw.sfreq <= 0:
        raise BadInputError(f"invalid sampling rate {raw.sfreq!r}")
    if raw.data.ndim != 2 or raw.data.shape[0] != len(raw.ch_names):
        raise BadInputError(f"signal shape {raw.data.shape} does not match {len(raw.ch_names)} channel labels")
    if selection.n_channels == 0:
        raise BadInputError("no valid EEG channels: none of the labels maps to the channel vocabulary")
    if max(selection.positions) >= raw.data.shape[0]:
        raise BadInputError("channel selection does not match the recording's channels")


def standardize(raw: RawRecording, selection: ChannelSelection, cfg: StandardizeConfig,
                notch_hz: float | None = None, crop_end_s: float | None = None) -> StandardizedRecording:
    """Filter, notch, resample and scale the selected channels of one recording.

    ``notch_hz``/``crop_end_s`` override the config for this recording (a
    dataset's mains frequency, NeuroLM's 10-s pretraining crop); ``None`` keeps
    the config, ``NO_NOTCH`` (0) disables the notch. Raises ``BadInputError``
    when the recording cannot yield a sample (too short, no usable channel).
    """
    _check_input(raw, selection)
    if notch_hz is not None and not (np.isfinite(notch_hz) and notch_hz >= 0):
        raise ConfigError(f"notch_hz override must be >= 0 (0 disables), got {notch_hz!r}")
    if crop_end_s is not None and not (np.isfinite(crop_end_s) and crop_end_s >= 0):
        raise ConfigError(f"crop_end_s override must be >= 0, got {crop_end_s!r}")
    if raw.sfreq < cfg.min_sfreq:
        raise BadInputError(f"sampling rate {raw.sfreq:g} Hz is below the minimum {cfg.min_sfreq:g} Hz")
    notch = cfg.notch_hz if notch_hz is None else notch_hz
    crop = cfg.crop_end_s if crop_end_s is None else crop_end_s
    usable_s = raw.duration_s - crop
    if usable_s < cfg.min_duration_s or raw.data.shape[1] < 2:
        raise BadInputError(f"too short: {raw.duration_s:.2f} s ({crop:g} s cropped), need {cfg.min_duration_s:g} s")
    names = selection.names
    n_crop = int(round(crop * cfg.sfreq))
    if cfg.method == "mne":
        x = np.empty((len(names), raw.data.shape[1]), np.float32)
        prep = [quality.prepare_row(_fill(x[i], raw.data[p]), cfg) for i, p in enumerate(selection.positions)]
        out = _mne_chain(x, float(raw.sfreq), cfg, notch, exact_ratio=False)
        rec_flags = _kernels(float(raw.sfreq), cfg.l_freq, cfg.h_freq, notch or None)[1]
        del x
        if n_crop:
            out = np.ascontiguousarray(out[:, : max(out.shape[1] - n_crop, 0)])
    else:  # the cropped end is never computed into the output (no copy of the rest)
        out, prep, rec_flags = _fft_chain(raw.data, selection.positions, float(raw.sfreq), cfg, notch, n_crop)
    dc = _dc_gain(float(raw.sfreq), cfg.l_freq, cfg.h_freq, notch or None)
    if abs(dc) > 1e-9:  # no high-pass configured: the channel means belong in the output
        out += (np.array([m for _, m in prep]) * (dc / cfg.unit_divisor)).astype(np.float32)[:, None]
    ch_flags = {n: list(f) for n, (f, _) in zip(names, prep)}
    for i in np.flatnonzero(quality.extreme_channels(out, cfg.unit_divisor, cfg.extreme_uv)):
        ch_flags[names[i]].append("extreme")
    frozen = {n: tuple(f) for n, f in ch_flags.items() if f}
    flags = quality.recording_flags(names, frozen, cfg.mostly_flat_fraction) + rec_flags
    if raw.sfreq < cfg.sfreq:
        flags += ("upsampled",)
    if short_for_filters(raw.data.shape[1], float(raw.sfreq), cfg, notch):
        flags += ("short_edge_effects",)
    return StandardizedRecording(
        data=out, ch_names=tuple(names), ch_indices=tuple(selection.indices), orig_sfreq=float(raw.sfreq),
        duration_s=out.shape[1] / cfg.sfreq, channel_flags=frozen, flags=tuple(sorted(set(flags))),
        sfreq=cfg.sfreq,
    )


def warm_filters(fs: float, cfg: StandardizeConfig, notch_hz: float | None = None) -> None:
    """Design and cache, in this process, the filters :func:`standardize` uses at input rate ``fs``.

    For a long-lived process that forks children to do the work (ingestion's per-batch
    children): what a child designs is lost with it, what the parent caches every child inherits.
    A rate the filters cannot be designed for is left to the child to report.
    """
    notch = cfg.notch_hz if notch_hz is None else notch_hz
    try:
        _kernels(float(fs), cfg.l_freq, cfg.h_freq, notch or None)
    except (BadInputError, ValueError):
        pass


def short_for_filters(n_samples: int, fs: float, cfg: StandardizeConfig, notch: float | None) -> bool:
    """True when the recording is no longer than the half-length of the longest FIR kernel.

    Then MNE's ``reflect_limited`` padding cannot reflect a whole half-kernel
    and zero-pads the rest, once per pass (filter, notch, resample), while the
    single pass reflects once: the two chains filter different extensions of
    the signal and disagree everywhere, not only at the ends. Measured
    (bench/bench_short_edges.py, bench/results_standardize.md): max |ours - mne|
    / RMS ~0.56 at 10 s and ~0.09 at 15 s, against <= 7e-3 from 16.6 s on at
    250-1000 Hz (the 0.1 Hz band-pass kernel is 33 s long, half 16.5 s).
    Such recordings are stored, flagged ``short_edge_effects``.
    """
    kernels, _ = _kernels(fs, cfg.l_freq, cfg.h_freq, notch or None)
    return bool(kernels) and n_samples <= max((len(h) - 1) // 2 for h in kernels)


def _fill(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    dst[:] = src
    return dst


def _fft_chain(data: np.ndarray, positions: tuple[int, ...], fs: float, cfg: StandardizeConfig,
               notch: float | None, n_crop: int = 0
               ) -> tuple[np.ndarray, list[tuple[list[str], float]], tuple[str, ...]]:
    """The single-pass FFT implementation: raw µV rows -> model units (the last ``n_crop`` output samples
    dropped), plus row flags.

    Blocks of up to 8 rows (one pocketfft SIMD group). Each block is copied once into its padded FFT
    buffer, repaired, checked and centred there (``quality.prepare_row``), reflected and forward-transformed
    on the stager thread -- block k+1 while block k is filtered, inverse-transformed and scaled here (scipy's
    FFTs and numpy's passes release the GIL). The output does not depend on the blocks or the threads.
    """
    kernels, design_flags = _kernels(fs, cfg.l_freq, cfg.h_freq, notch or None)
    half = sum((len(h) - 1) // 2 for h in kernels)
    n = data.shape[1]
    p = _plan(n, fs, cfg.sfreq, half)
    n_bins = min(p.n_fft // 2, p.n_out_fft // 2) + 1
    resp_fn = _response if p.n_fft <= _CACHE_MAX_FFT else _response.__wrapped__  # bound the cache's memory
    resp = resp_fn(fs, cfg.l_freq, cfg.h_freq, notch or None, p.n_fft, n_bins)
    scale = np.float32(p.n_out_fft / p.n_fft / cfg.unit_divisor)
    n_keep = max(p.n_out - n_crop, 0)
    out = np.empty((len(positions), n_keep), np.float32)
    prep: list[tuple[list[str], float]] = []
    block = min(fft_rows(p.n_fft), _FFT_ROWS)  # whole SIMD groups; several blocks, so the stager runs ahead
    right = p.n_fft - n - p.pad

    def stage(b0: int) -> tuple[np.ndarray, list[tuple[list[str], float]]]:
        rows = positions[b0:b0 + block]
        buf = np.empty((len(rows), p.n_fft), np.float32)
        flags = [quality.prepare_row(_fill(buf[j, p.pad:p.pad + n], data[pos]), cfg) for j, pos in enumerate(rows)]
        _reflect_in_place(buf, p.pad, n, right)
        buf[:, :p.pad - min(p.pad, n - 1)] = 0  # beyond the reflections (MNE's reflect_limited): zeros
        buf[:, p.pad + n + min(right, n - 1):] = 0
        return sfft.rfft(buf, axis=1, overwrite_x=True, workers=1), flags

    starts = list(range(0, len(positions), block))
    stager = _stager() if len(starts) > 1 else None
    ahead = stager.submit(stage, starts[0]) if stager is not None else None
    for k, b0 in enumerate(starts):
        spec, flags = ahead.result() if ahead is not None else stage(b0)
        if stager is not None and k + 1 < len(starts):
            ahead = stager.submit(stage, starts[k + 1])
        prep.extend(flags)
        keep = spec[:, :n_bins]
        keep *= resp
        if p.n_out_fft > p.n_fft and p.n_fft % 2 == 0:
            keep[:, -1] *= 0.5  # upsampling: split the old Nyquist bin, as scipy.signal.resample does
        y = sfft.irfft(keep, n=p.n_out_fft, axis=1, overwrite_x=True, workers=1)
        del spec, keep
        np.multiply(y[:, p.out_start:p.out_start + n_keep], scale, out=out[b0:b0 + block])
    return out, prep, design_flags


def _stager() -> ThreadPoolExecutor:
    """This process's thread that lays out FFT blocks ahead (:func:`_fft_chain`)."""
    return process_thread("neurolm-fft-stage")


def _mne_chain(x: np.ndarray, fs: float, cfg: StandardizeConfig, notch: float | None,
               exact_ratio: bool) -> np.ndarray:
    """NeuroLM's chain with MNE on finite µV rows -> float32 model units."""
    import mne

    info = mne.create_info([f"ch{i}" for i in range(x.shape[0])], fs, "eeg")
    mraw = mne.io.RawArray(x.astype(np.float64) * 1e-6, info, verbose=False)
    h_freq = cfg.h_freq if cfg.h_freq is not None and cfg.h_freq < fs / 2 else None
    if cfg.l_freq is not None or h_freq is not None:
        mraw.filter(cfg.l_freq, h_freq, verbose=False)
    if notch and notch + notch / 400 + 0.5 < fs / 2:
        mraw.notch_filter(notch, verbose=False)
    if fs != cfg.sfreq:
        npad: int | str = "auto"
        up, down = _ratio(fs, cfg.sfreq)
        if exact_ratio and up and x.shape[1] % down == 0:
            # npad a multiple of `down` (>= MNE's own minimum): padded length and the
            # cut-off padding both map to whole output samples, so MNE's ratio is exact
            npad = -(-min(x.shape[1] // 8, 100) // down) * down
        mraw.resample(cfg.sfreq, npad=npad, verbose=False)
    return (mraw.get_data(units="uV") / cfg.unit_divisor).astype(np.float32)


def mne_reference_chain(raw: RawRecording, selection: ChannelSelection, cfg: StandardizeConfig,
                        notch_hz: float | None = None, exact_ratio: bool = False) -> np.ndarray:
    """NeuroLM's literal MNE chain (filter -> notch -> resample -> µV/100), for tests and benches.

    No cropping, no quality checks; non-finite samples must not be present.
    ``exact_ratio=True`` chooses ``resample``'s ``npad`` so that MNE's padded
    length maps to an integer output length (no time stretch); the default is
    NeuroLM's call, ``raw.resample(200)``.
    """
    _check_input(raw, selection)
    x = np.asarray(raw.data[list(selection.positions)], np.float32)
    if not np.isfinite(x).all():
        raise BadInputError("non-finite samples: the MNE chain cannot filter them")
    notch = cfg.notch_hz if notch_hz is None else notch_hz
    return _mne_chain(x, float(raw.sfreq), cfg, notch, exact_ratio)
