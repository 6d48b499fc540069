"""Which dtype / codec / chunking should the signal store use? Measured, not guessed.

Data: realistic synthetic EEG at 200 Hz after NeuroLM's chain (0.1-75 Hz band):
per-channel pink (1/f) noise at ~20 µV RMS, a shared component (volume conduction),
intermittent 10 Hz alpha bursts, 60 Hz-notched, plus a small white amplifier floor.

Candidates (all Zarr v3 on local disk, chunks = one NeuroLM sample window):
  float32 + Blosc zstd byte-shuffle   (the reference: what a naive store writes)
  float16 + Blosc zstd byte-shuffle
  int16 (0.1 µV steps) + Blosc zstd byte-shuffle / bit-shuffle / + Delta filter
  int16 + bit-shuffle with sharding (whole recording = one shard)
Reported: MB per channel-hour on disk, ratio to float32, write MB/s (of float32
input), random sample-window reads per second, and max quantisation error in µV.

Run:  .venv/bin/python bench/bench_store_codec.py [--hours 1.0] [--channels 19]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SFREQ = 200.0


def synthetic_eeg(n_ch: int, n: int, seed: int = 0) -> np.ndarray:
    """float32 [n_ch, n] in µV with a 1/f spectrum, alpha bursts and a shared component."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1 / SFREQ)
    shape = np.zeros_like(freqs)
    band = (freqs >= 0.1) & (freqs <= 75.0)
    shape[band] = 1.0 / np.sqrt(freqs[band])  # amplitude ∝ f^-1/2 → power ∝ 1/f
    shape[(freqs > 58) & (freqs < 62)] *= 0.05  # notch

    def colored(k: int) -> np.ndarray:
        spec = (rng.standard_normal((k, freqs.size)) + 1j * rng.standard_normal((k, freqs.size))) * shape
        x = np.fft.irfft(spec, n=n, axis=-1)
        return x / x.std(axis=-1, keepdims=True)

    own = colored(n_ch) * 20.0
    shared = colored(1) * 12.0
    t = np.arange(n) / SFREQ
    envelope = (np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 6)) > 0.3).astype(np.float64)
    alpha = 15.0 * envelope * np.sin(2 * np.pi * 10.0 * t)
    gains = rng.uniform(0.5, 1.5, size=(n_ch, 1))
    x = own + shared * gains + alpha * gains[::-1] + rng.standard_normal((n_ch, n)) * 0.5
    return x.astype(np.float32)


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def candidates():
    import zarr.codecs as zc

    def blosc(shuffle: str, clevel: int = 5):
        return zc.BloscCodec(cname="zstd", clevel=clevel, shuffle=shuffle)

    def delta():
        from zarr.codecs.numcodecs import Delta

        return Delta(dtype="<i2")

    return [
        ("float32 zstd5 shuffle (ref)", "float32", dict(compressors=[blosc("shuffle")])),
        ("float16 zstd5 shuffle", "float16", dict(compressors=[blosc("shuffle")])),
        ("int16 zstd5 shuffle", "int16", dict(compressors=[blosc("shuffle")])),
        ("int16 zstd5 bitshuffle", "int16", dict(compressors=[blosc("bitshuffle")])),
        ("int16 zstd3 shuffle", "int16", dict(compressors=[blosc("shuffle", 3)])),
        ("int16 zstd9 shuffle", "int16", dict(compressors=[blosc("shuffle", 9)])),
        ("int16 delta+zstd5 bitshuffle", "int16", dict(filters=[delta()], compressors=[blosc("bitshuffle")])),
        ("int16 zstd5 shuffle sharded", "int16", dict(compressors=[blosc("shuffle")], shards="rec")),
    ]


def encode(x_uv: np.ndarray, dtype: str) -> tuple[np.ndarray, float]:
    """Array to store and the factor back to µV."""
    if dtype == "int16":
        return np.clip(np.rint(x_uv * 10.0), -32767, 32767).astype(np.int16), 0.1
    return x_uv.astype(dtype), 1.0


def run(hours: float, n_ch: int, n_reads: int, n_recs: int) -> list[dict]:
    import zarr

    n = int(hours * 3600 * SFREQ / n_recs)
    win = (1024 // n_ch) * int(SFREQ)
    n = (n // win) * win
    recs = [synthetic_eeg(n_ch, n, seed=i) for i in range(n_recs)]
    ch_hours = n_ch * n * n_recs / SFREQ / 3600
    rows = []
    root = tempfile.mkdtemp(prefix="bench-store-")
    try:
        for name, dtype, kw in candidates():
            path = os.path.join(root, name.replace(" ", "_").replace("(", "").replace(")", ""))
            kw = dict(kw)
            t0 = time.perf_counter()
            for i, rec in enumerate(recs):
                data, _ = encode(rec, dtype)
                if kw.get("shards") == "rec" or isinstance(kw.get("shards"), tuple):
                    kw["shards"] = (n_ch, n)  # the whole recording is one stored object
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    a = zarr.create_array(zarr.storage.LocalStore(path), name=f"r{i}", shape=data.shape,
                                          dtype=dtype, chunks=(n_ch, win), **kw)
                    a[:] = data
            t_write = time.perf_counter() - t0
            size = dir_bytes(path)
            # random sample-window reads, fresh array handles (what a DataLoader worker does)
            rng = np.random.default_rng(1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arrs = [zarr.open_array(zarr.storage.LocalStore(path, read_only=True), path=f"r{i}", mode="r")
                        for i in range(n_recs)]
                t0 = time.perf_counter()
                err = 0.0
                for _ in range(n_reads):
                    r = int(rng.integers(n_recs))
                    k = int(rng.integers(n // win))
                    block = arrs[r][:, k * win:(k + 1) * win]
                    data_uv = block.astype(np.float32) * encode(recs[r][:1, :1], dtype)[1]
                    err = max(err, float(np.abs(data_uv - recs[r][:, k * win:(k + 1) * win]).max()))
                t_read = time.perf_counter() - t0
            rows.append(dict(name=name, mb_ch_h=size / 1e6 / ch_hours, write_mbs=sum(r.nbytes for r in recs) / 1e6 / t_write,
                             reads_s=n_reads / t_read, max_err_uv=err, files=sum(len(f) for _, _, f in os.walk(path))))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = rows[0]["mb_ch_h"]
    for r in rows:
        r["ratio"] = r["mb_ch_h"] / ref
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0, help="total recording hours (split over --recordings)")
    ap.add_argument("--channels", type=int, default=19)
    ap.add_argument("--recordings", type=int, default=3)
    ap.add_argument("--reads", type=int, default=300)
    args = ap.parse_args()
    rows = run(args.hours, args.channels, args.reads, args.recordings)
    print(f"{args.channels} ch, {args.hours} h in {args.recordings} recordings, chunk = one sample window "
          f"({1024 // args.channels} s)")
    print(f"{'candidate':34s} {'MB/ch-h':>8s} {'vs f32':>7s} {'write MB/s':>10s} {'reads/s':>8s} {'max err µV':>10s} {'files':>6s}")
    for r in rows:
        print(f"{r['name']:34s} {r['mb_ch_h']:8.3f} {r['ratio']:7.2f} {r['write_mbs']:10.1f} {r['reads_s']:8.1f} "
              f"{r['max_err_uv']:10.3f} {r['files']:6d}")


if __name__ == "__main__":
    main()
