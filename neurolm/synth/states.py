"""Slowly varying brain state of synthetic EEG: what makes the next second predictable.

Why: real EEG is not stationary noise. Vigilance and sleep states last from seconds to
minutes and each has its own spectrum and amplitude (eyes-closed alpha, eyes-open beta and
blinks, drowsy theta and slow eye movements, sleep spindles, delta and slow oscillations). A model that predicts the next second of a
channel from context (NeuroLM stage 2) can only beat a context-free (unigram) predictor when
the signal has such structure; without it the demo's pretraining had nothing to learn.

A recording is a sequence of state segments (6-40 s, each state different from the one
before, awake states more often than sleep); every rhythm's gain is constant within a segment up to a per-segment jitter and a
slow drift (time constant ~5 s), cross-faded over ~1.5 s at the boundaries. Gains are built
at a 10 Hz control rate and interpolated, so hours of signal stay O(n).

The rhythms are generated once per recording and shared by all channels with site weights
(alpha posterior, theta and beta fronto-central, delta and slow waves frontal, spindles central): a spatial
gradient, as volume conduction gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

CTRL_HZ = 10.0  # control rate of the state gains


@dataclass(frozen=True)
class BrainState:
    """Gains of each rhythm (multiplying the rhythm's µV amplitude) and the blink probability."""

    name: str
    background: float
    alpha: float
    theta: float
    delta: float
    beta: float
    spindle: float
    slow: float  # 0.05-0.25 Hz: slow drifts and eye movements (drowsy), slow waves (deep sleep)
    blinks: float  # probability that a candidate blink happens


STATES = (
    BrainState("eyes-closed", background=0.3, alpha=1.6, theta=0.25, delta=0.15, beta=0.3, spindle=0.0, slow=0.3, blinks=0.1),
    BrainState("eyes-open", background=0.3, alpha=0.15, theta=0.2, delta=0.1, beta=2.5, spindle=0.0, slow=0.6, blinks=1.0),
    BrainState("drowsy", background=0.35, alpha=0.4, theta=1.8, delta=0.4, beta=0.2, spindle=0.0, slow=1.5, blinks=0.5),
    BrainState("light-sleep", background=0.4, alpha=0.05, theta=0.8, delta=0.8, beta=0.1, spindle=1.5, slow=0.8, blinks=0.05),
    BrainState("deep-sleep", background=0.4, alpha=0.0, theta=0.4, delta=2.5, beta=0.05, spindle=0.2, slow=1.5, blinks=0.0),
)
#: How often each state is entered: mostly awake, as in routine clinical EEG.
STATE_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)
RHYTHMS = ("background", "alpha", "theta", "delta", "beta", "spindle", "slow", "blinks")
SEGMENT_S = (6.0, 40.0)  # state durations are uniform in this range


def state_sequence(rng: np.random.Generator, seconds: float) -> list[tuple[float, int]]:
    """[(start_s, state index)] covering ``seconds``; states drawn by :data:`STATE_WEIGHTS`, consecutive ones differ."""
    w = np.asarray(STATE_WEIGHTS, dtype=np.float64)
    out, t, k = [], 0.0, int(rng.choice(len(STATES), p=w / w.sum()))
    while t < seconds:
        out.append((t, k))
        t += float(rng.uniform(*SEGMENT_S))
        others = np.where(np.arange(len(STATES)) == k, 0.0, w)
        k = int(rng.choice(len(STATES), p=others / others.sum()))
    return out


def state_gains(rng: np.random.Generator, n: int, sfreq: float) -> dict[str, np.ndarray]:
    """Per-sample gain of every rhythm in :data:`RHYTHMS` ([n] float64 each), following a random state sequence."""
    seconds = n / sfreq
    n_ctrl = int(np.ceil(seconds * CTRL_HZ)) + 2
    segs = state_sequence(rng, seconds)
    starts = np.array([int(s * CTRL_HZ) for s, _ in segs] + [n_ctrl])
    drift = sps.lfilter([0.02], [1.0, -0.98], rng.standard_normal((len(RHYTHMS), n_ctrl + 200)), axis=1)[:, 200:]
    drift /= drift.std(axis=1, keepdims=True) + 1e-12
    win = np.hanning(int(1.5 * CTRL_HZ) + 2)[1:-1]
    win /= win.sum()
    t_ctrl = np.arange(n_ctrl) / CTRL_HZ
    t = np.arange(n) / sfreq
    gains = {}
    for r, name in enumerate(RHYTHMS):
        level = np.empty(n_ctrl)
        for j, (_, k) in enumerate(segs):
            jitter = float(np.exp(0.2 * rng.standard_normal())) if name != "blinks" else 1.0
            level[starts[j]:starts[j + 1]] = getattr(STATES[k], name) * jitter
        if name != "blinks":
            level *= np.exp(0.15 * drift[r])
        smooth = np.convolve(np.pad(level, len(win), mode="edge"), win, mode="same")[len(win):-len(win)]
        gains[name] = np.interp(t, t_ctrl, smooth)
    return gains


def band_noise(rng: np.random.Generator, n: int, sfreq: float, lo: float, hi: float) -> np.ndarray:
    """Unit-std noise band-passed to [lo, hi] Hz (4th-order Butterworth; empty band → zeros)."""
    hi = min(hi, 0.45 * sfreq)
    if hi <= lo:
        return np.zeros(n)
    sos = sps.butter(2, [lo, hi], btype="bandpass", fs=sfreq, output="sos")
    warm = int(max(2.0, 3.0 / lo) * sfreq)  # drop the filter's start-up transient
    x = sps.sosfilt(sos, rng.standard_normal(n + warm))[warm:]
    return x / (x.std() or 1.0)


def gated_bursts(rng: np.random.Generator, n: int, sfreq: float, rate_hz: float, dur_s: float,
                 keep: np.ndarray) -> np.ndarray:
    """0..1 envelope of ~``dur_s`` bursts at ~``rate_hz``; a burst starting at sample i happens with probability keep[i]."""
    env = np.zeros(n)
    width = max(int(dur_s * sfreq), 3)
    win = np.hanning(width)
    n_ev = rng.poisson(rate_hz * n / sfreq)
    for start in rng.integers(0, max(n - width, 1), size=n_ev):
        if rng.random() < keep[start]:
            seg = env[start: start + width]
            seg += win[: len(seg)]
    return np.minimum(env, 1.0)
