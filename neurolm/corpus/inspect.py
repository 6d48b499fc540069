"""``neurolm tokens inspect``: what is in a token corpus, and is the codebook healthy?

Why these numbers: the LLM stage cares about size (samples, tokens, per
dataset and split) and about the *code distribution*. A tokenizer with a
collapsed codebook (few codes used, low perplexity) gives the LLM almost
nothing to predict; "codes used / codebook size" and the code perplexity
(exp of the entropy of the code histogram, in nats; = codebook size for a
uniform histogram, 1 for a single code) show it at a glance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurolm.corpus.reader import TokenCorpus


def code_histogram(corpus: TokenCorpus, max_shards: int | None = None,
                   verify: bool = False) -> tuple[np.ndarray, int]:
    """Counts of every code over (the first ``max_shards``) shards, and how many shards were read.

    ``verify`` re-hashes every array read against its commit marker (StoreError on the first corrupt shard).
    """
    size = corpus.codebook_size or 65536
    counts = np.zeros(size, dtype=np.int64)
    shards = corpus.shards if max_shards is None else corpus.shards[:max_shards]
    for k in shards:
        codes = corpus.version.read_shard(int(k), verify=verify).codes
        counts += np.bincount(codes, minlength=size)[:size]
    return counts, len(shards)


def code_stats(counts: np.ndarray, top: int = 10) -> dict[str, Any]:
    total = int(counts.sum())
    used = int(np.count_nonzero(counts))
    if total == 0:
        return {"tokens_counted": 0, "codes_used": 0, "codebook_size": len(counts), "perplexity": 0.0,
                "entropy_nats": 0.0, "top_codes": []}
    p = counts[counts > 0] / total
    entropy = float(-(p * np.log(p)).sum())
    order = np.argsort(-counts, kind="stable")[:top]
    return {
        "tokens_counted": total, "codes_used": used, "codebook_size": int(len(counts)),
        "codes_used_fraction": used / len(counts), "entropy_nats": entropy, "perplexity": math.exp(entropy),
        "top_codes": [{"code": int(c), "count": int(counts[c]), "fraction": float(counts[c] / total)}
                      for c in order if counts[c] > 0],
    }


def task_split_counts(man) -> dict[str, dict[str, Any]]:
    """Per task: samples per split, tokens per sample, and samples per class (label_name) — labeled corpora."""
    out: dict[str, dict[str, Any]] = {}
    for task, g in man.groupby("task", sort=True):
        out[str(task)] = {
            "splits": {str(k): int(v) for k, v in g.groupby("split").size().items()},
            "tokens_per_sample": sorted({int(x) for x in g["n_tokens"]}),
            "classes": {f"{int(lab)}:{name}": int(n) for (lab, name), n in
                        g.groupby(["label", "label_name"]).size().items()},
        }
    return out


def inspect_corpus(url: str, version: str | None = None, top: int = 10, max_shards: int | None = None,
                   verify: bool = False) -> dict[str, Any]:
    """Summary of a complete corpus version (JSON-serialisable); ``verify`` checks shard checksums."""
    tc = TokenCorpus.open(url, version=version)
    man = tc.manifest
    def groups(col: str) -> dict[str, dict[str, int]]:
        g = man.groupby(col)["n_tokens"].agg(["size", "sum"])
        return {str(k): {"samples": int(r["size"]), "tokens": int(r["sum"])} for k, r in g.iterrows()}
    counts, read = code_histogram(tc, max_shards, verify)
    lineage = tc.lineage
    labeled = lineage.get("kind") == "labeled"
    return {
        "url": tc.version.root_url, "version_id": tc.version_id, "status": tc.status.get("status"),
        "kind": lineage.get("kind", "pretrain"),
        **({"by_task_split": task_split_counts(man),
            "quarantined_rows": int(lineage.get("info", {}).get("n_quarantined_rows", 0)),
            "quarantined_examples": lineage.get("info", {}).get("quarantined_rows", [])[:10]} if labeled else {}),
        "n_shards": int(len(tc.shards)), "n_samples": len(tc), "n_tokens": tc.n_tokens,
        "tokens_per_sample": {"mean": float(man["n_tokens"].mean()) if len(man) else 0.0,
                              "min": int(man["n_tokens"].min()) if len(man) else 0,
                              "max": int(man["n_tokens"].max()) if len(man) else 0},
        "n_recordings": int(man["recording_id"].nunique()),
        "by_dataset": groups("dataset"), "by_split": groups("split"),
        "codes": {**code_stats(counts, top), "shards_read": read},
        "lineage": lineage.get("identity", {}),
        "provenance": {k: v for k, v in lineage.get("info", {}).items() if k not in ("tokenizer_config", "quarantined_rows")},
        "content_hash": tc.status.get("content_hash"),
        "verified_shards": read if verify else 0,
    }


def render_text(s: dict[str, Any]) -> str:
    """Plain-text report for the terminal (also valid Markdown)."""
    c = s["codes"]
    lines = [
        f"# Token corpus {s['version_id']} ({s['status']}{', labeled' if s.get('kind') == 'labeled' else ''})",
        f"- location: {s['url']}",
        f"- samples: {s['n_samples']:,} in {s['n_shards']} shards from {s['n_recordings']} recordings",
        f"- tokens: {s['n_tokens']:,} (per sample mean {s['tokens_per_sample']['mean']:.0f}, "
        f"min {s['tokens_per_sample']['min']}, max {s['tokens_per_sample']['max']})",
        f"- codes used: {c['codes_used']:,} / {c['codebook_size']:,}"
        + (f" ({100 * c.get('codes_used_fraction', 0):.1f} %)" if c["tokens_counted"] else "")
        + f"; perplexity {c['perplexity']:.1f} (entropy {c['entropy_nats']:.3f} nats)"
        + (f"; from {c['shards_read']} of {s['n_shards']} shards" if c["shards_read"] < s["n_shards"] else ""),
        *([f"- checksums: {s['verified_shards']} shards verified against their commit markers"]
          if s.get("verified_shards") else []),
        "", "| dataset | samples | tokens |", "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v['samples']:,} | {v['tokens']:,} |" for k, v in s["by_dataset"].items()]
    lines += ["", "| split | samples | tokens |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['samples']:,} | {v['tokens']:,} |" for k, v in s["by_split"].items()]
    if s.get("kind") == "labeled":
        lines += ["", "| task | train | val | test | tokens/sample | classes (label:name samples) |",
                  "|---|---:|---:|---:|---|---|"]
        for task, t in s["by_task_split"].items():
            sp = t["splits"]
            classes = ", ".join(f"{k} {v}" for k, v in t["classes"].items())
            lines.append(f"| {task} | {sp.get('train', 0):,} | {sp.get('val', 0):,} | {sp.get('test', 0):,} | "
                         f"{','.join(map(str, t['tokens_per_sample']))} | {classes} |")
        if s.get("quarantined_rows"):
            lines += ["", f"{s['quarantined_rows']} labeled window(s) quarantined, e.g.:"]
            lines += [f"- {q['task']} {q['recording_id']} @ {q['start']}: {q['reason']}"
                      for q in s["quarantined_examples"]]
    lines += ["", "| top code | count | share |", "|---:|---:|---:|"]
    lines += [f"| {t['code']} | {t['count']:,} | {100 * t['fraction']:.2f} % |" for t in c["top_codes"]]
    lin = s["lineage"]
    lines += ["", "Lineage:"] + [f"- {k}: {lin[k]}" for k in sorted(lin)]
    prov = s["provenance"]
    lines += [f"- {k}: {prov[k]}" for k in sorted(prov)]
    return "\n".join(lines)
