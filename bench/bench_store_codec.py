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
input), random sample-window reads per CPU-second, and max quantisation error in µV.

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
# CPU time of this process (all its threads), not wall time: the benchmark machine is
# shared, and CPU time is what other processes' load disturbs least. Data stays in the
# page cache, so I/O wait is negligible either way.
clock = time.process_time


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

    def blosc(shuffle: str, clevel: int = 5, cname: str = "zstd"):
        return zc.BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle)

    def delta():
        from zarr.codecs.numcodecs import Delta

        return Delta(dtype="<i2")

    return [
        ("float32 zstd5 shuffle (ref)", "float32", dict(compressors=[blosc("shuffle")])),
        ("float16 zstd5 shuffle", "float16", dict(compressors=[blosc("shuffle")])),
        ("int16 zstd5 shuffle", "int16", dict(compressors=[blosc("shuffle")])),
        ("int16 zstd5 bitshuffle", "int16", dict(compressors=[blosc("bitshuffle")])),
        ("int16 zstd3 shuffle", "int16", dict(compressors=[blosc("shuffle", 3)])),
        ("int16 zstd2 shuffle", "int16", dict(compressors=[blosc("shuffle", 2)])),
        ("int16 zstd1 shuffle", "int16", dict(compressors=[blosc("shuffle", 1)])),
        ("int16 zstd9 shuffle", "int16", dict(compressors=[blosc("shuffle", 9)])),
        ("int16 zstd2 bitshuffle", "int16", dict(compressors=[blosc("bitshuffle", 2)])),
        ("int16 lz4 5 shuffle", "int16", dict(compressors=[blosc("shuffle", 5, "lz4")])),
        ("int16 lz4 5 bitshuffle", "int16", dict(compressors=[blosc("bitshuffle", 5, "lz4")])),
        ("int16 lz4 9 bitshuffle", "int16", dict(compressors=[blosc("bitshuffle", 9, "lz4")])),
        ("int16 delta+zstd5 bitshuffle", "int16", dict(filters=[delta()], compressors=[blosc("bitshuffle")])),
        ("int16 zstd5 shuffle sharded", "int16", dict(compressors=[blosc("shuffle")], shards="rec")),
    ]


def encode(x_uv: np.ndarray, dtype: str) -> tuple[np.ndarray, float]:
    """Array to store and the factor back to µV."""
    if dtype == "int16":
        return np.clip(np.rint(x_uv * 10.0), -32767, 32767).astype(np.int16), 0.1
    return x_uv.astype(dtype), 1.0


def per_sample_files(root: str, recs: list[np.ndarray], win: int, n_reads: int) -> dict:
    """NeuroLM's layout: one float64 file per sample window (.npy here; the original pickles)."""
    path = os.path.join(root, "per_sample_npy")
    os.makedirs(path)
    t0 = clock()
    for i, rec in enumerate(recs):
        for k in range(rec.shape[1] // win):
            np.save(os.path.join(path, f"r{i}_{k}.npy"), rec[:, k * win:(k + 1) * win].astype(np.float64))
    t_write = clock() - t0
    rng = np.random.default_rng(1)
    n = recs[0].shape[1]
    t0 = clock()
    for _ in range(n_reads):
        r, k = int(rng.integers(len(recs))), int(rng.integers(n // win))
        np.load(os.path.join(path, f"r{r}_{k}.npy"), allow_pickle=False)
    t_read = clock() - t0
    return dict(name="per-sample float64 files (NeuroLM)", size=dir_bytes(path), t_write=t_write, t_read=t_read,
                max_err_uv=0.0, files=len(os.listdir(path)))


def _write(path: str, recs: list[np.ndarray], dtype: str, kw: dict, win: int) -> float:
    import zarr

    t0 = clock()
    for i, rec in enumerate(recs):
        data, _ = encode(rec, dtype)
        kw = dict(kw)
        if kw.get("shards") == "rec":
            kw["shards"] = (rec.shape[0], rec.shape[1])  # the whole recording is one stored object
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = zarr.create_array(zarr.storage.LocalStore(path), name=f"r{i}", shape=data.shape, dtype=dtype,
                                  chunks=(rec.shape[0], win), overwrite=True, **kw)
            a[:] = data
    return clock() - t0


def _read(path: str, recs: list[np.ndarray], dtype: str, win: int, n_reads: int) -> tuple[float, float]:
    """Random sample-window reads through fresh array handles (what a DataLoader worker does)."""
    import zarr

    rng = np.random.default_rng(1)
    n = recs[0].shape[1]
    factor = encode(recs[0][:1, :1], dtype)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrs = [zarr.open_array(zarr.storage.LocalStore(path, read_only=True), path=f"r{i}", mode="r")
                for i in range(len(recs))]
        err, t_read = 0.0, 0.0
        for _ in range(n_reads):
            r, k = int(rng.integers(len(recs))), int(rng.integers(n // win))
            t0 = clock()
            block = arrs[r][:, k * win:(k + 1) * win]
            t_read += clock() - t0
            err = max(err, float(np.abs(block.astype(np.float32) * factor - recs[r][:, k * win:(k + 1) * win]).max()))
    return t_read, err


def run(hours: float, n_ch: int, n_reads: int, n_recs: int, repeat: int) -> list[dict]:
    """Every candidate written and read ``repeat`` times, round-robin; the best time counts (shared CPUs are noisy)."""
    n = int(hours * 3600 * SFREQ / n_recs)
    win = (1024 // n_ch) * int(SFREQ)
    n = (n // win) * win
    recs = [synthetic_eeg(n_ch, n, seed=i) for i in range(n_recs)]
    ch_hours = n_ch * n * n_recs / SFREQ / 3600
    in_mb = sum(r.nbytes for r in recs) / 1e6
    cands = candidates()
    best = {name: [np.inf, np.inf, 0.0] for name, _, _ in cands}
    root = tempfile.mkdtemp(prefix="bench-store-")
    paths = {name: os.path.join(root, name.replace(" ", "_").replace("(", "").replace(")", "")) for name, _, _ in cands}
    rows = []
    try:
        ref_rows = []
        for _ in range(repeat):
            for name, dtype, kw in cands:
                tw = _write(paths[name], recs, dtype, kw, win)
                tr, err = _read(paths[name], recs, dtype, win, n_reads)
                b = best[name]
                b[0], b[1], b[2] = min(b[0], tw), min(b[1], tr), max(b[2], err)
            shutil.rmtree(os.path.join(root, "per_sample_npy"), ignore_errors=True)
            ref_rows.append(per_sample_files(root, recs, win, n_reads))
        for name, _, _ in cands:
            tw, tr, err = best[name]
            rows.append(dict(name=name, mb_ch_h=dir_bytes(paths[name]) / 1e6 / ch_hours, write_mbs=in_mb / tw,
                             reads_s=n_reads / tr, max_err_uv=err,
                             files=sum(len(f) for _, _, f in os.walk(paths[name]))))
        ref = ref_rows[-1]
        rows.insert(0, dict(name=ref["name"], mb_ch_h=ref["size"] / 1e6 / ch_hours,
                            write_mbs=in_mb / min(r["t_write"] for r in ref_rows),
                            reads_s=n_reads / min(r["t_read"] for r in ref_rows), max_err_uv=0.0, files=ref["files"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = rows[0]
    for r in rows:
        r["ratio"] = r["mb_ch_h"] / ref["mb_ch_h"]
        r["w_ratio"] = r["write_mbs"] / ref["write_mbs"]
        r["r_ratio"] = r["reads_s"] / ref["reads_s"]
    return rows


#: the store's codec before 2026-12-07 (issue 15), compared end to end with the current one
ZSTD2 = {"cname": "zstd", "clevel": 2, "shuffle": "shuffle"}


def store_end_to_end(n_ch: int, minutes: float, n_recs: int, n_reads: int, repeat: int) -> list[dict]:
    """SignalStore.write_recording / read_sample with the store's codec, unsharded (default) vs sharded, and
    unsharded with the codec before (Blosc zstd 2, byte shuffle)."""
    import storage.signal_codec as sc
    import storage.signal_store as ss

    class Rec:
        def __init__(self, data):
            self.data, self.ch_names, self.ch_indices = data, tuple(f"C{i}" for i in range(n_ch)), tuple(range(n_ch))
            self.orig_sfreq, self.duration_s = 256.0, data.shape[1] / SFREQ

    recs = [Rec(synthetic_eeg(n_ch, int(minutes * 60 * SFREQ), seed=10 + i) / 100.0) for i in range(n_recs)]
    ch_hours = n_ch * minutes / 60 * n_recs
    out = []
    default, codec = ss.SHARD_CHUNKS, dict(sc.CODEC)
    root = tempfile.mkdtemp(prefix="bench-store-e2e-")
    now = f"{codec['cname']}{codec['clevel']} {codec['shuffle']}"
    try:
        for label, shard_chunks, use in ((f"unsharded (1 object per window), {now}", 0, codec),
                                         (f"sharded (32 windows/shard), {now}", 32, codec),
                                         ("unsharded, zstd2 shuffle (before)", 0, ZSTD2)):
            ss.SHARD_CHUNKS = shard_chunks
            sc.CODEC.clear()
            sc.CODEC.update(use)  # the same dict object: signal_store imported it by name
            url = os.path.join(root, f"s{shard_chunks}-{use['cname']}")
            store = ss.SignalStore.open(url, create=True, config={"sfreq": SFREQ})
            t_write = t_read = np.inf
            for _ in range(repeat):
                t0 = clock()
                for i, r in enumerate(recs):
                    store.write_recording(f"r{i}", r)
                t_write = min(t_write, clock() - t0)
                reader = ss.SignalStore.open(url)
                rng = np.random.default_rng(2)
                counts = [reader.sample_count(f"r{i}") for i in range(n_recs)]
                t0 = clock()
                for _ in range(n_reads):
                    i = int(rng.integers(n_recs))
                    reader.read_sample(f"r{i}", int(rng.integers(counts[i])))
                t_read = min(t_read, clock() - t0)
            store.collect_garbage(grace_s=0.0)  # each repeat wrote a new generation: size the current ones only
            sig = os.path.join(store.version_url, "signals.zarr")
            out.append(dict(name=label, ch_h_per_s=ch_hours / t_write, samples_s=n_reads / t_read,
                            mb_ch_h=dir_bytes(sig) / 1e6 / ch_hours, files=sum(len(f) for _, _, f in os.walk(sig))))
    finally:
        ss.SHARD_CHUNKS = default
        sc.CODEC.clear()
        sc.CODEC.update(codec)
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0, help="total recording hours (split over --recordings)")
    ap.add_argument("--channels", type=int, default=19)
    ap.add_argument("--recordings", type=int, default=3)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="best of N (round-robin over candidates)")
    ap.add_argument("--e2e-minutes", type=float, default=30.0)
    ap.add_argument("--e2e-recordings", type=int, default=4)
    args = ap.parse_args()
    rows = run(args.hours, args.channels, args.reads, args.recordings, args.repeat)
    print(f"{args.channels} ch, {args.hours} h in {args.recordings} recordings, chunk = one sample window "
          f"({1024 // args.channels} s), best of {args.repeat}; write MB/s is of float32 input")
    print("ratios are against the first row (NeuroLM's own layout)")
    print(f"{'candidate':36s} {'MB/ch-h':>8s} {'size x':>7s} {'write MB/s':>10s} {'write x':>7s} {'reads/s':>8s} "
          f"{'read x':>6s} {'max err µV':>10s} {'files':>6s}")
    for r in rows:
        print(f"{r['name']:36s} {r['mb_ch_h']:8.3f} {r['ratio']:7.2f} {r['write_mbs']:10.1f} {r['w_ratio']:7.2f} "
              f"{r['reads_s']:8.1f} {r['r_ratio']:6.2f} {r['max_err_uv']:10.3f} {r['files']:6d}")
    e2e = store_end_to_end(args.channels, args.e2e_minutes, args.e2e_recordings, args.reads, args.repeat)
    print(f"\nSignalStore end to end: {args.e2e_recordings} recordings x {args.e2e_minutes} min x {args.channels} ch, "
          "write_recording (incl. quantise + checksum + marker) and random read_sample")
    print(f"{'layout':52s} {'write ch-h/s':>12s} {'read_sample/s':>13s} {'MB/ch-h':>8s} {'files':>6s}")
    for r in e2e:
        print(f"{r['name']:52s} {r['ch_h_per_s']:12.1f} {r['samples_s']:13.1f} {r['mb_ch_h']:8.3f} {r['files']:6d}")


if __name__ == "__main__":
    main()
