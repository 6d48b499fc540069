"""Token-corpus reader throughput (samples/s, one core) against naive references.

Compared in the same run, on the same synthetic NeuroLM-shaped corpus
(19/23 channels, ~1,010 tokens per sample):

- ``TokenCorpus.iter_samples``   sequential streaming, shard-level cache
- ``TokenCorpus.iter_samples(shuffle=True)``   block-shuffled streaming
- ``TokenIterableDataset`` + ``collate_tokens``: padded [32, 1024] torch batches with targets
- ``TokenCorpus[i]`` random     random access (LRU of 8 shards; mostly misses on big corpora)
- naive per-sample zarr         one zarr slice read per array per sample (offsets → codes/ch/time)
- file per sample (.npy)        NeuroLM's layout (one file per sample; .npy instead of pickle,
                                 which this project never unpickles)

Usage: ``python bench/bench_corpus_reader.py [--samples 20000] [--shard-size 1024] [--dir DIR]``
Target: ≥ 10,000 samples/s streaming on one core.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neurolm.corpus.reader import TokenCorpus  # noqa: E402
from neurolm.corpus.synthetic import write_synthetic_corpus  # noqa: E402


def timed(label, fn, n_expected):
    t0 = time.perf_counter()
    n, tokens = fn()
    dt = time.perf_counter() - t0
    assert n == n_expected, (label, n, n_expected)
    print(f"{label:38s} {n:7d} samples {dt:7.3f} s  {n / dt:10.0f} samples/s  {tokens / dt / 1e6:7.2f} M tokens/s")
    return n / dt


def consume(it):
    n = tokens = 0
    for s in it:
        n += 1
        tokens += len(s["codes"])
        _ = int(s["codes"][0]) + int(s["ch"][-1]) + int(s["time"][-1])  # touch the data
    return n, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--shard-size", type=int, default=1024)
    ap.add_argument("--naive-samples", type=int, default=2000, help="samples for the (slow) naive references")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="bench-corpus-")
    url = os.path.join(work, "corpus")
    t0 = time.perf_counter()
    v = write_synthetic_corpus(url, args.samples, shard_size=args.shard_size, seed=0)
    print(f"wrote {args.samples} samples in {time.perf_counter() - t0:.1f} s at {url}")

    rates = {}
    tc = TokenCorpus.open(url)
    rates["stream"] = timed("TokenCorpus.iter_samples", lambda: consume(tc.iter_samples()), len(tc))
    tc = TokenCorpus.open(url)
    rates["shuffle"] = timed("TokenCorpus.iter_samples(shuffle)", lambda: consume(tc.iter_samples(shuffle=True)), len(tc))
    tc = TokenCorpus.open(url, cache_shards=8)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(tc), args.naive_samples)
    rates["random"] = timed("TokenCorpus[i] random (8-shard LRU)", lambda: consume(tc[int(i)] for i in idx), len(idx))

    from torch.utils.data import DataLoader

    from neurolm.corpus.reader import collate_tokens
    from neurolm.corpus.torch_data import TokenIterableDataset

    def torch_batches():
        loader = DataLoader(TokenIterableDataset(url, shuffle=True), batch_size=32, num_workers=0,
                            collate_fn=collate_tokens)
        n = tokens = 0
        for b in loader:
            n += b["codes"].shape[0]
            tokens += int(b["mask"].sum())
        return n, tokens
    rates["torch"] = timed("TokenIterableDataset+collate (batch 32)", torch_batches, len(tc))

    # naive reference 1: per-sample zarr slices, no caching
    import zarr
    from storage import fs
    man = tc.manifest
    first = man.groupby("shard")["sample"].min().to_dict()
    sel = man.iloc[: args.naive_samples]

    def naive_zarr():
        groups = {}
        for row in sel.itertuples():
            k = int(row.shard)
            if k not in groups:
                groups[k] = zarr.open_group(fs.zarr_store(v.shard_url(k), read_only=True), mode="r")
            g = groups[k]
            j = int(row.sample) - first[k]
            a, b = (int(x) for x in g["offsets"][j:j + 2])
            yield {"codes": g["codes"][a:b].astype(np.int64), "ch": g["ch"][a:b].astype(np.int64),
                   "time": g["time"][a:b].astype(np.int64)}
    rates["naive_zarr"] = timed("naive per-sample zarr reads", lambda: consume(naive_zarr()), len(sel))

    # naive reference 2: one file per sample (NeuroLM layout)
    files_dir = os.path.join(work, "per_sample")
    os.makedirs(files_dir, exist_ok=True)
    paths = []
    for i in range(len(sel)):
        s = tc[i]
        p = os.path.join(files_dir, f"s{i:07d}.npy")
        np.save(p, np.stack([s["codes"], s["ch"], s["time"]]).astype(np.int64))
        paths.append(p)

    def per_file():
        for p in paths:
            a = np.load(p, allow_pickle=False)
            yield {"codes": a[0], "ch": a[1], "time": a[2]}
    rates["per_file"] = timed("file per sample (.npy)", lambda: consume(per_file()), len(paths))

    print(f"\nstreaming vs naive zarr: {rates['stream'] / rates['naive_zarr']:.1f}x; "
          f"vs file-per-sample: {rates['stream'] / rates['per_file']:.1f}x; target 10,000 samples/s: "
          f"{'MET' if rates['stream'] >= 10000 else 'NOT met'} ({rates['stream']:.0f})")


if __name__ == "__main__":
    main()
