"""Realistic-looking synthetic EEG, deterministic by seed.

Why not white noise: downstream stages (filtering, flat/clip detection, the VQ
tokenizer) only get exercised meaningfully on signals with EEG-like spectra and
artefacts. Each channel gets a 1/f ("pink") background with a shared component
(volume conduction), 8–12 Hz alpha bursts weighted towards occipital sites,
frontal eye blinks, temporal muscle bursts and mains interference. Non-EEG
channels (ECG, EOG, PHOTIC, EMG) get their own simple generators so that the
channel-selection stage has something real to drop.

With ``states=True`` (the default) the EEG follows a slowly varying brain state
(:mod:`neurolm.synth.states`: eyes-closed alpha, eyes-open beta and blinks, drowsy
theta, sleep spindles and delta, in segments of 6-40 s): what makes one second of a
channel predictable from the seconds before it, as in real EEG. ``states=False``
gives the stationary generator of earlier versions, bit for bit.

Everything is generated one channel at a time with O(n) filters, so hours of
signal are cheap (~0.1 s per channel-hour at 256 Hz).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

from neurolm.errors import ConfigError
from neurolm.synth.states import band_noise, gated_bursts, state_gains

#: 10-20 labels used when the caller does not name channels (TUH-like order).
STANDARD_EEG = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8",
    "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ", "T1", "T2",
)  # fmt: skip
#: Extra 10-10 sites for montages above 23 channels.
EXTRA_EEG = (
    "FPZ", "AF3", "AF4", "AF7", "AF8", "F1", "F2", "F5", "F6", "FC1", "FC2", "FC3",
    "FC4", "FC5", "FC6", "FT7", "FT8", "C1", "C2", "C5", "C6", "CP1", "CP2", "CP3",
    "CP4", "CP5", "CP6", "TP7", "TP8", "P1", "P2", "P5", "P6", "PO3", "PO4", "PO7",
    "PO8", "POZ", "OZ", "CPZ", "FCZ", "AFZ", "IZ", "TP9", "TP10", "FT9", "FT10",
)  # fmt: skip
#: Non-EEG channels that real clinical files carry and ingestion must drop.
NON_EEG = ("ECG", "EOG", "PHOTIC", "EMG")

_OCCIPITAL = ("O1", "O2", "OZ", "PO", "P3", "P4", "PZ", "T5", "T6", "P7", "P8", "IZ")
_FRONTAL = ("FP1", "FP2", "FPZ", "AF", "F7", "F8", "F3", "F4", "FZ")
_TEMPORAL = ("T3", "T4", "T7", "T8", "FT", "TP", "T1", "T2", "F7", "F8")
_CENTRAL = ("C3", "C4", "CZ", "C1", "C2", "C5", "C6", "FC", "CP")
# Paul Kellet's 3-pole 1/f approximation (accurate to ±0.5 dB over 3+ decades).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def default_ch_names(n_channels: int, n_non_eeg: int = 0) -> tuple[str, ...]:
    """Plain 10-20/10-10 labels for `n_channels`, the last `n_non_eeg` non-EEG."""
    n_eeg = n_channels - n_non_eeg
    pool = STANDARD_EEG + EXTRA_EEG
    if n_eeg > len(pool) or n_non_eeg > len(NON_EEG) or n_eeg < 0:
        raise ConfigError(f"cannot name {n_channels} channels with {n_non_eeg} non-EEG")
    return tuple(pool[:n_eeg]) + NON_EEG[:n_non_eeg]


def _site(label: str) -> str:
    """'EEG FP1-REF' -> 'FP1' (only for choosing artefact weights)."""
    return label.upper().split(" ")[-1].split("-")[0]


def _kind(label: str) -> str:
    up = label.upper().replace("EKG", "ECG")
    for k in NON_EEG:
        if k in up:
            return k
    return "EEG"


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n + 512)
    return sps.lfilter(_PINK_B, _PINK_A, white)[512:]  # drop the filter's warm-up


def _bursts(rng: np.random.Generator, n: int, sfreq: float, rate_hz: float, dur_s: float) -> np.ndarray:
    """Smooth 0..1 envelope with bursts of ~`dur_s` occurring at ~`rate_hz`."""
    env = np.zeros(n)
    n_ev = rng.poisson(rate_hz * n / sfreq)
    if n_ev == 0:
        return env
    width = max(int(dur_s * sfreq), 3)
    win = np.hanning(width)
    for start in rng.integers(0, max(n - width, 1), size=n_ev):
        seg = env[start : start + width]
        seg += win[: len(seg)]
    return np.minimum(env, 1.0)


def synth_signal(
    n_channels: int,
    sfreq: float,
    seconds: float,
    seed: int = 0,
    *,
    ch_names: Sequence[str] | None = None,
    mains_hz: float | None = 60.0,
    background_uv: float = 25.0,
    alpha_uv: float = 40.0,
    line_uv: float = 4.0,
    artefacts: bool = True,
    states: bool = True,
) -> np.ndarray:
    """Synthetic multichannel EEG in µV, float32 [n_channels, round(seconds*sfreq)].

    `ch_names` (default: `default_ch_names(n_channels)`) only steers where
    alpha, blinks and muscle go and which rows are ECG/EOG/PHOTIC/EMG; any
    label style works ("EEG FP1-REF", "Fp1", "FP1"). Same arguments and seed
    give bit-identical output. `states`: a slowly varying brain state modulates
    the rhythms (see the module doc); False gives stationary EEG.
    """
    if n_channels < 1 or sfreq <= 0 or seconds <= 0:
        raise ConfigError("synth_signal needs n_channels >= 1, sfreq > 0, seconds > 0")
    names = tuple(ch_names) if ch_names is not None else default_ch_names(n_channels)
    if len(names) != n_channels:
        raise ConfigError(f"{len(names)} channel names for {n_channels} channels")
    n = int(round(seconds * sfreq))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sfreq
    common = _pink(rng, n)
    common /= common.std() or 1.0
    # Alpha: one shared 8-12 Hz generator (slowly wandering frequency) gated by bursts.
    f_alpha = 10.0 + 0.8 * sps.lfilter([0.001], [1, -0.999], rng.standard_normal(n))
    alpha_osc = np.sin(2 * np.pi * np.cumsum(f_alpha) / sfreq)
    alpha_env = _bursts(rng, n, sfreq, 0.3, 2.5)
    blinks = _bursts(rng, n, sfreq, 0.15, 0.3) if artefacts else np.zeros(n)
    muscle_env = _bursts(rng, n, sfreq, 0.05, 1.0) if artefacts else np.zeros(n)
    rhythms = _state_rhythms(seed, n, sfreq, artefacts) if states else None
    if rhythms is None:
        alpha, bg_gain = alpha_osc * alpha_env, 1.0
    else:  # alpha waxes and wanes within a state instead of coming and going
        alpha, bg_gain = alpha_osc * (0.5 + 0.5 * alpha_env) * rhythms["alpha"], rhythms["background"]
        blinks = rhythms["blinks"]
    out = np.empty((n_channels, n), dtype=np.float32)
    for i, label in enumerate(names):
        crng = np.random.default_rng([seed, i])
        kind, site = _kind(label), _site(label)
        if kind == "ECG":
            beat = np.mod(t * 1.15 + crng.random(), 1.0)
            row = 800.0 * np.exp(-(((beat - 0.5) / 0.012) ** 2)) + 20 * crng.standard_normal(n)
        elif kind == "PHOTIC":
            row = np.where(np.mod(t, 20.0) < 10.0, 0.0, 100.0 * (np.sin(2 * np.pi * 5 * t) > 0))
        elif kind == "EOG":
            row = 150.0 * blinks + 40.0 * _pink(crng, n) / 30.0
        else:
            own = _pink(crng, n)
            own /= own.std() or 1.0
            row = background_uv * bg_gain * (0.6 * common + 0.8 * own)
            occ = 1.0 if any(site.startswith(p) for p in _OCCIPITAL) else 0.25
            row += alpha_uv * occ * (0.9 + 0.2 * crng.random()) * alpha
            if rhythms is not None and kind == "EEG":
                row += _state_mix(rhythms, site)
            if kind == "EMG" or any(site.startswith(p) for p in _TEMPORAL):
                hf = sps.lfilter([1, -1], [1], crng.standard_normal(n))
                row += (40.0 if kind == "EEG" else 80.0) * muscle_env * hf
            if kind == "EEG" and any(site.startswith(p) for p in _FRONTAL):
                row += 150.0 * blinks
        if mains_hz:
            row = row + line_uv * np.sin(2 * np.pi * mains_hz * t + crng.random() * 6.283)
        out[i] = row
    return out


#: µV amplitude of each state rhythm at gain 1, and its band (Hz). Slow activity is kept at 12 µV: at 50 µV
#: the sub-Hz drift made ~65 % of a 1-s patch's variance its mean (after the 0.1 Hz high-pass), so a
#: tokenizer's codes tracked each patch's random level instead of the state's rhythms (issue 12); at 12 µV
#: the patch mean holds ~20 %, as with the stationary generator's 1/f background (~30 %).
_RHYTHM_UV = {"theta": (20.0, 4.0, 7.5), "delta": (30.0, 0.5, 3.0), "beta": (6.0, 18.0, 26.0),
              "spindle": (15.0, 12.0, 14.0), "slow": (12.0, 0.05, 0.25)}


def _state_rhythms(seed: int, n: int, sfreq: float, artefacts: bool) -> dict[str, np.ndarray]:
    """Shared state-modulated rhythms (µV at gain 1) and gains; its own RNG, so ``states=False`` is unchanged."""
    srng = np.random.default_rng([seed, 1_000_003])
    gains = state_gains(srng, n, sfreq)
    out = {"background": gains["background"], "alpha": gains["alpha"]}
    for name, (uv, lo, hi) in _RHYTHM_UV.items():
        out[name] = uv * gains[name] * band_noise(srng, n, sfreq, lo, hi)
    out["spindle"] *= gated_bursts(srng, n, sfreq, 0.2, 1.0, np.ones(n))
    out["blinks"] = gated_bursts(srng, n, sfreq, 0.3, 0.3, gains["blinks"]) if artefacts else np.zeros(n)
    return out


def _state_mix(rhythms: dict[str, np.ndarray], site: str) -> np.ndarray:
    """Theta/delta/beta/spindles/slow waves at one site: the spatial gradients of the shared generators."""
    frontal = any(site.startswith(p) for p in _FRONTAL)
    central = any(site.startswith(p) for p in _CENTRAL)
    w_theta = 1.0 if (frontal or central) else 0.5
    w_delta = 1.0 if frontal else 0.6
    w_beta = 1.0 if frontal else (0.5 if central else 0.3)
    w_spindle = 1.0 if central else 0.4
    w_slow = 1.0 if frontal else 0.6
    return (w_theta * rhythms["theta"] + w_delta * rhythms["delta"] + w_beta * rhythms["beta"]
            + w_spindle * rhythms["spindle"] + w_slow * rhythms["slow"])
