"""Block-streamed standardization: the single FFT pass of :mod:`neurolm.standardize`, in time blocks.

Why: the whole-file path holds the input (float32, n_ch x n), one FFT buffer per
channel block over the whole length and the output; that is ~0.8 GB per hour of a
64-channel 256 Hz recording, ~20 GB for 24 h. Here memory is bounded by the block size,
whatever the length.

How (overlap-save): output block ``k`` covers output samples ``[k B_out, (k+1) B_out)``,
i.e. input ``[i0, i1)`` with ``i0 = k B_out down / up`` (``B_out`` a multiple of the
resampling numerator ``up``, so block boundaries fall on whole input *and* output
samples). The block reads ``[i0 - P, i1 + P)``, where ``P`` is the whole-file path's
padding (the combined kernel half-length rounded up to a multiple of ``down``), runs the
same rfft -> x H -> irfft onto ``N up/down`` points with ``N`` fixed for every block,
and keeps only the core. Inside the core every output sample sees the same input
samples through the same kernel as in the whole-file pass: the operator is the same
linear convolution. Only at the true file ends is the signal extended, with the same
odd reflection (``reflect_limited``) as the whole-file path. What differs: float32
rounding of other transform lengths, and the resampler's spectral truncation at the new
Nyquist (an ideal low-pass whose tails reach past ``P``) acting on the filtered signal,
where the band-pass has already removed the content (stop band -53 dB). Measured
(tests/test_standardize_stream.py): max |stream - whole| / RMS 2e-6..8e-6 at 250/256/500/1000 Hz
with and without notch, everywhere including the edges; the test bound is 1e-4, far below
the store's int16 step (0.1 µV ~ 1e-3 RMS). Upsampled rates (< 200 Hz) differ by up to 5e-3
(the band-limited interpolation's tails reach past any margin) and take the whole-file path.

Quality checks need whole-channel figures (the mean to centre, the std for ``flat``,
the count of samples on the max/min for ``clipped``); a first pass over the file reads it
block by block and reduces it to these (Chan's parallel variance). ``clipped`` counts
samples on the raw max/min (the whole-file path counts them after float32 centring; they
differ only if centring merged neighbouring levels). ``extreme`` is counted block by
block on the output. A recording with any non-finite sample (never from EDF/BDF integer
data) raises :class:`NeedsWholeFile`: repairing a gap interpolates across it, which the
whole-file path does. Irrational rate ratios (rounded output lengths) also take the
whole-file path.

Memory: one input segment (``n_ch x (B_in + 2P)`` float32), one output block, and the
FFT working set of one channel group (``_BLOCK_BYTES``). With the defaults
(``STREAM_BLOCK_VALUES``) ~0.35 GB for 64 channels at any length and rate; measured peak
RSS of an ingest worker, interpreter included: 0.53-0.55 GB for 2, 4 and 24 h of 64-channel
256 Hz EDF (bench/results_ingest_memory.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft

from neurolm import quality
from neurolm.errors import BadInputError, ConfigError
from neurolm.readers.blocks import BlockSource
from neurolm.standardize import (_CACHE_MAX_FFT, StandardizeConfig, _dc_gain, _kernels, _ratio, fft_rows,
                                 _reflect_in_place, _response, short_for_filters)
from neurolm.vocab import ChannelSelection

#: Recordings with more input values (picked channels x samples) than this stream; smaller ones take
#: the whole-file path, which is faster for them (one transform per channel). 64 Mi values = 256 MiB of
#: float32 input: ~1.1 h of 64 channels or ~3.2 h of 23 channels at 256 Hz (its peak stays < 1 GB).
#: A constant, not a share of RAM, so which path a file takes -- and its stored checksum format -- is
#: the same on every machine.
STREAM_MIN_VALUES = 64 * 2**20
#: Input values per streamed block (all channels): 32 Mi = 128 MiB of float32 per segment.
STREAM_BLOCK_VALUES = 32 * 2**20


class NeedsWholeFile(Exception):
    """This recording cannot be streamed (reason in the message); read it whole instead."""


@dataclass(frozen=True)
class StreamedInfo:
    """What ``standardize`` returns besides the samples, for a streamed recording."""

    ch_names: tuple[str, ...]
    ch_indices: tuple[int, ...]
    orig_sfreq: float
    n_samples: int  # output samples (after the end crop)
    sfreq: float
    channel_flags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq


def should_stream(n_channels: int, n_samples: int) -> bool:
    """True when a recording this size takes the streamed path (see ``STREAM_MIN_VALUES``)."""
    return int(n_channels) * int(n_samples) > STREAM_MIN_VALUES


def block_length(fs: float, cfg: StandardizeConfig, n_channels: int, align: int = 1,
                 block_values: int = STREAM_BLOCK_VALUES) -> int:
    """Output samples per block: a multiple of ``align`` (the store's chunk length) and of ``up``."""
    up, down = _ratio(fs, cfg.sfreq)
    if not up:
        raise NeedsWholeFile(f"the rate ratio {cfg.sfreq:g}/{fs:g} is not a small fraction")
    unit = math.lcm(int(align), up)
    want = block_values // max(int(n_channels), 1) * up // down
    return max(unit, want // unit * unit)


@dataclass
class _ChannelStats:
    n: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    hi: np.ndarray | None = None
    lo: np.ndarray | None = None
    n_hi: np.ndarray | None = None
    n_lo: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        """Fold block ``x`` [n_ch, k] in (Chan et al.'s parallel mean/variance; max/min counts)."""
        k = x.shape[1]
        if k == 0:
            return
        total = x.sum(axis=1, dtype=np.float64)
        if not np.isfinite(total).all():
            raise NeedsWholeFile("non-finite samples: gaps are repaired on the whole channel")
        m_b = total / k
        m2_b = np.empty(x.shape[0])
        for i, row in enumerate(x):  # the whole-file path's centring: float32 row - float32 mean, one dot
            c = row - np.float32(m_b[i])
            m2_b[i] = float(np.dot(c, c))
        hi, lo = x.max(axis=1), x.min(axis=1)
        n_hi = np.count_nonzero(x == hi[:, None], axis=1)
        n_lo = np.count_nonzero(x == lo[:, None], axis=1)
        if self.n == 0:
            self.n, self.mean, self.m2 = k, m_b, m2_b
            self.hi, self.lo, self.n_hi, self.n_lo = hi, lo, n_hi, n_lo
            return
        n = self.n + k
        d = m_b - self.mean
        self.m2 = self.m2 + m2_b + d * d * (self.n * k / n)
        self.mean = self.mean + d * (k / n)
        self.n = n
        self.n_hi = np.where(hi > self.hi, n_hi, self.n_hi + np.where(hi == self.hi, n_hi, 0))
        self.n_lo = np.where(lo < self.lo, n_lo, self.n_lo + np.where(lo == self.lo, n_lo, 0))
        self.hi, self.lo = np.maximum(hi, self.hi), np.minimum(lo, self.lo)

    def flags(self, th: quality.QualityThresholds) -> list[list[str]]:
        """Per channel, what ``quality.prepare_row`` flags (flat / clipped) for the whole channel."""
        need = max(th.clip_min_samples, th.clip_fraction * self.n)
        out = []
        for i in range(len(self.mean)):
            std = math.sqrt(max(float(self.m2[i]), 0.0) / self.n)
            if std < th.flat_uv:
                out.append(["flat"])
            elif self.n_hi[i] >= need or self.n_lo[i] >= need:
                out.append(["clipped"])
            else:
                out.append([])
        return out


class StreamStandardizer:
    """``standardize`` for a :class:`BlockSource`, block by block (see module docstring).

    Use: ``s = StreamStandardizer(src, sel, cfg, ...)``; ``s.prepare()`` (the statistics pass;
    raises ``BadInputError`` like ``standardize``, ``NeedsWholeFile`` when it cannot stream);
    ``for block in s.blocks(): ...`` (float32 [n_ch, <= block_out] model units, consecutive, the
    end crop applied); then ``s.info()``. ``block_out``: output samples per block (default from
    ``STREAM_BLOCK_VALUES``), a multiple of ``align`` and of the rate ratio's numerator.
    """

    def __init__(self, source: BlockSource, selection: ChannelSelection, cfg: StandardizeConfig,
                 notch_hz: float | None = None, crop_end_s: float | None = None, *, align: int = 1,
                 block_out: int | None = None):
        if selection.n_channels == 0:
            raise BadInputError("no valid EEG channels: none of the labels maps to the channel vocabulary")
        if notch_hz is not None and not (np.isfinite(notch_hz) and notch_hz >= 0):
            raise ConfigError(f"notch_hz override must be >= 0 (0 disables), got {notch_hz!r}")
        if crop_end_s is not None and not (np.isfinite(crop_end_s) and crop_end_s >= 0):
            raise ConfigError(f"crop_end_s override must be >= 0, got {crop_end_s!r}")
        fs = float(source.sfreq)
        if not np.isfinite(fs) or fs <= 0:
            raise BadInputError(f"invalid sampling rate {fs!r}")
        if fs < cfg.min_sfreq:
            raise BadInputError(f"sampling rate {fs:g} Hz is below the minimum {cfg.min_sfreq:g} Hz")
        self.src, self.sel, self.cfg, self.fs = source, selection, cfg, fs
        self.notch = cfg.notch_hz if notch_hz is None else notch_hz
        crop = cfg.crop_end_s if crop_end_s is None else crop_end_s
        self.n = int(source.n_samples)
        if self.n / fs - crop < cfg.min_duration_s or self.n < 2:
            raise BadInputError(f"too short: {self.n / fs:.2f} s ({crop:g} s cropped), need {cfg.min_duration_s:g} s")
        if fs < cfg.sfreq:  # band-limited upsampling: its sinc tails reach far past any margin (measured 5e-3)
            raise NeedsWholeFile(f"{fs:g} Hz is upsampled to {cfg.sfreq:g} Hz")
        self.up, self.down = _ratio(fs, cfg.sfreq)
        if not self.up:
            raise NeedsWholeFile(f"the rate ratio {cfg.sfreq:g}/{fs:g} is not a small fraction")
        n_ch = selection.n_channels
        self.block_out = int(block_out) if block_out else block_length(fs, cfg, n_ch, align)
        if self.block_out % self.up or self.block_out % int(align):
            raise ConfigError(f"block_out {self.block_out} is not a multiple of {self.up} and {align}")
        self.block_in = self.block_out // self.up * self.down
        self.kernels, self.design_flags = _kernels(fs, cfg.l_freq, cfg.h_freq, self.notch or None)
        half = sum((len(h) - 1) // 2 for h in self.kernels)
        self.pad = -(-max(half, 1) // self.down) * self.down  # the whole-file path's padding
        self.n_fft = self.down * sfft.next_fast_len(-(-(self.block_in + 2 * self.pad) // self.down), real=True)
        self.n_out_fft = self.n_fft // self.down * self.up
        n_out = max(int(round(self.n * cfg.sfreq / fs)), 1)
        self.n_keep = max(n_out - int(round(crop * cfg.sfreq)), 0)
        self._stats: _ChannelStats | None = None
        self._ch_flags: list[list[str]] = []
        self._extreme = np.zeros(n_ch, np.int64)
        self._done = False

    def _rows(self, start: int, stop: int) -> np.ndarray:
        x = self.src.read(start, stop)
        pos = list(self.sel.positions)
        return x if pos == list(range(x.shape[0])) else x[pos]

    def prepare(self) -> None:
        """The statistics pass (mean, std, max/min counts per channel); raises like ``standardize``."""
        st = _ChannelStats()
        step = max(self.block_in, 1)
        for s0 in range(0, self.n, step):
            st.add(self._rows(s0, min(self.n, s0 + step)))
        self._stats = st
        self._ch_flags = st.flags(self.cfg)
        names = self.sel.names
        quality.recording_flags(names, {n: tuple(f) for n, f in zip(names, self._ch_flags)},
                                self.cfg.mostly_flat_fraction)  # raises when no channel is usable

    def blocks(self) -> Iterator[np.ndarray]:
        """Consecutive output blocks (float32 model units); the last may be shorter."""
        if self._stats is None:
            self.prepare()
        cfg, p, up, down = self.cfg, self.pad, self.up, self.down
        means32 = self._stats.mean.astype(np.float32)
        n_bins = min(self.n_fft // 2, self.n_out_fft // 2) + 1
        resp_fn = _response if self.n_fft <= _CACHE_MAX_FFT else _response.__wrapped__
        resp = resp_fn(self.fs, cfg.l_freq, cfg.h_freq, self.notch or None, self.n_fft, n_bins)
        scale = np.float32(self.n_out_fft / self.n_fft / cfg.unit_divisor)
        dc = _dc_gain(self.fs, cfg.l_freq, cfg.h_freq, self.notch or None)
        add = (self._stats.mean * (dc / cfg.unit_divisor)).astype(np.float32)[:, None] if abs(dc) > 1e-9 else None
        n_ch = self.sel.n_channels
        group = fft_rows(self.n_fft)
        t = np.float32(cfg.extreme_uv / cfg.unit_divisor)
        for o0 in range(0, self.n_keep, self.block_out):
            o1 = min(o0 + self.block_out, self.n_keep)
            i0 = o0 // up * down
            s, e = max(0, i0 - p), min(self.n, i0 + self.block_in + p)
            seg = self._rows(s, e)
            lp, rp = (p if s == 0 else 0), (p if e == self.n else 0)
            first = (lp + i0 - s) // down * up
            out = np.empty((n_ch, o1 - o0), np.float32)
            for g0 in range(0, n_ch, group):
                rows = slice(g0, min(n_ch, g0 + group))
                buf = np.zeros((rows.stop - rows.start, self.n_fft), np.float32)
                np.subtract(seg[rows], means32[rows, None], out=buf[:, lp:lp + (e - s)])
                _reflect_in_place(buf, lp, e - s, rp)
                spec = sfft.rfft(buf, axis=1, overwrite_x=True, workers=1)
                del buf
                keep = spec[:, :n_bins]
                keep *= resp
                if self.n_out_fft > self.n_fft and self.n_fft % 2 == 0:
                    keep[:, -1] *= 0.5
                y = sfft.irfft(keep, n=self.n_out_fft, axis=1, overwrite_x=True, workers=1)
                del spec, keep
                np.multiply(y[:, first:first + (o1 - o0)], scale, out=out[rows])
                del y
            del seg
            if add is not None:
                out += add
            self._extreme += np.count_nonzero(out > t, axis=1) + np.count_nonzero(out < -t, axis=1)
            yield out
        self._done = True

    def info(self) -> StreamedInfo:
        """Flags and shape of the streamed output (after :meth:`blocks` is exhausted)."""
        if not self._done:
            raise RuntimeError("info() before all blocks were produced")
        names = self.sel.names
        ch_flags = {n: list(f) for n, f in zip(names, self._ch_flags)}
        if self.n_keep:
            for i in np.flatnonzero(self._extreme > 0.01 * self.n_keep):
                ch_flags[names[i]].append("extreme")
        frozen = {n: tuple(f) for n, f in ch_flags.items() if f}
        flags = quality.recording_flags(names, frozen, self.cfg.mostly_flat_fraction) + self.design_flags
        if self.fs < self.cfg.sfreq:
            flags += ("upsampled",)
        if short_for_filters(self.n, self.fs, self.cfg, self.notch):
            flags += ("short_edge_effects",)
        return StreamedInfo(ch_names=tuple(names), ch_indices=tuple(self.sel.indices), orig_sfreq=self.fs,
                            n_samples=self.n_keep, sfreq=self.cfg.sfreq, channel_flags=frozen,
                            flags=tuple(sorted(set(flags))))
