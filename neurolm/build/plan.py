"""What a build runs: its steps, each step's key, and the decision run / skip with the reason.

Pure functions over a :class:`~neurolm.build.config.BuildConfig` and the build state
(:mod:`storage.build_state`), so ``neurolm build --dry-run`` prints the plan without
running anything and the tests check every decision without a stage.

A step's **key** is sha256 over the step's own config (its params without the fields
that only say how fast or where from: :data:`RUNTIME_FIELDS` and the inputs the build
wires in at run time), the keys of the steps it reads from, and a fingerprint (path,
size, mtime) of the input folders it reads (a source archive, a dataset root). So:

- a changed standardization config changes every ingest key, hence every key downstream;
- a changed pretraining config changes the pretrain key and the keys after it only;
- a new file in an archive changes that ingest's key and what follows;
- more workers change nothing.

A step whose key equals the one it last completed with, and whose outputs still exist,
is skipped ("up to date"); anything else runs, and says why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neurolm.build.config import BuildConfig
from storage import fs

#: Params fields that change how a stage runs, never what it produces (left out of keys).
RUNTIME_FIELDS = frozenset({"workers", "dask_address", "lock_timeout_s", "table_flush_s", "num_workers", "keep_last",
                            "resume", "file_timeout_s", "file_memory_gb", "ckpt_every"})
#: Also left out of the ingest stages' keys: files per Dask task.
INGEST_RUNTIME_FIELDS = RUNTIME_FIELDS | {"batch_size"}
#: ``outputs`` keys that name a location: a skipped step's outputs must still exist.
LOCATION_OUTPUTS = ("store", "checkpoint", "corpus", "model", "pretrain_run", "tune_run", "evaluation", "synth")


@dataclass(frozen=True)
class Link:
    """One stage of the chain after ingestion: which config section, which upstream steps, what it takes."""

    step: str  # the step's name in the build
    stage: str  # its stage in neurolm.stages.STAGES
    section: str  # BuildConfig field holding its params
    upstream: tuple[str, ...]  # step names whose keys enter its key ("@ingest": every ingestion step)
    takes: Mapping[str, tuple[str, str]]  # params field -> (upstream step, its `outputs` key), set at run time
    keyed_out: bool = False  # write to OUT/<step key> (a run folder per distinct input), not OUT itself


#: The chain after ingestion, in order (a stage is one more link and one BuildConfig section).
CHAIN: tuple[Link, ...] = (
    Link("train-tokenizer", "train-tokenizer", "train_tokenizer", ("@ingest",),
         {"store": ("@ingest", "store"), "version": ("@ingest", "store_version")}, keyed_out=True),
    Link("tokenize", "tokenize", "tokenize", ("train-tokenizer",),
         {"store": ("@ingest", "store"), "store_version": ("@ingest", "store_version"),
          "tokenizer": ("train-tokenizer", "checkpoint")}),
    Link("tokenize-labeled", "tokenize", "tokenize_labeled", ("train-tokenizer",),
         {"store": ("@ingest", "store"), "store_version": ("@ingest", "store_version"),
          "tokenizer": ("train-tokenizer", "checkpoint")}),
    Link("pretrain", "pretrain", "pretrain", ("tokenize",),
         {"corpus": ("tokenize", "corpus"), "corpus_version": ("tokenize", "corpus_version")}),
    Link("tune", "tune", "tune", ("pretrain", "tokenize-labeled"),
         {"init": ("pretrain", "model"), "corpus": ("tokenize-labeled", "corpus"),
          "corpus_version": ("tokenize-labeled", "corpus_version")}),
    Link("evaluate", "evaluate", "evaluate", ("tune", "tokenize-labeled"),
         {"models": ("tune", "model"), "corpus": ("tokenize-labeled", "corpus"),
          "corpus_version": ("tokenize-labeled", "corpus_version")}),
)


@dataclass(frozen=True)
class Step:
    """One unit of a build: a stage run with its params (as configured; inputs are wired in at run time)."""

    name: str
    stage: str  # a neurolm.stages name, or "synth"
    params: Any
    upstream: tuple[str, ...] = ()
    trees: tuple[str, ...] = ()  # input folders fingerprinted into the key
    takes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    keyed_out: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # more key material (the store's standardize hash)

    def config(self) -> dict[str, Any]:
        """What of the params enters the key: all but runtime-only fields and the inputs wired at run time."""
        skip = (INGEST_RUNTIME_FIELDS if self.stage in ("ingest", "ingest-dataset") else RUNTIME_FIELDS) | set(self.takes)
        doc = self.params.model_dump(mode="json")
        return {**{k: v for k, v in sorted(doc.items()) if k not in skip}, **dict(self.extra)}


def expand(config: BuildConfig) -> list[Step]:
    """The build's steps in order: synth, one ingest per source, one ingest-dataset per dataset, then CHAIN."""
    steps: list[Step] = []
    std = {"standardize": config.standardize.config_hash()}
    synth = ("synth",) if config.synth is not None else ()
    if config.synth is not None:
        steps.append(Step("synth", "synth", config.synth))
    ingests = []
    for s in config.sources:
        steps.append(Step(f"ingest {s.dataset_name}", "ingest", s, synth, (s.source,), extra=std))
        ingests.append(steps[-1].name)
    for d in config.datasets:
        steps.append(Step(f"ingest-dataset {d.dataset}", "ingest-dataset", d, synth, (d.root,), extra=std))
        ingests.append(steps[-1].name)
    for link in CHAIN:
        params = getattr(config, link.section, None)
        if params is None:
            continue
        up = tuple(x for u in link.upstream for x in (ingests if u == "@ingest" else [u]))
        takes = {f: (ingests[-1] if s == "@ingest" else s, k) for f, (s, k) in link.takes.items()}
        steps.append(Step(link.step, link.stage, params, up, (), takes, link.keyed_out))
    return steps


def fingerprint(url: str) -> str:
    """sha256[:16] over (relative path, size, mtime) of every file under ``url`` ("missing" when absent)."""
    url = fs.normalize_url(url)
    if not fs.exists(url):
        return "missing"
    filesystem, root = fs.get_fs(url)
    entries = filesystem.find(root, detail=True)
    h = hashlib.sha256()
    for path in sorted(entries):
        info = entries[path]
        rel = path[len(root):].lstrip("/")
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
        h.update(f"{rel}\0{info.get('size')}\0{mtime}\n".encode())
    return h.hexdigest()[:16]


def key_material(step: Step, upstream_keys: Mapping[str, str], fingerprints: Mapping[str, str]) -> dict[str, Any]:
    """Everything a step's key hashes (kept in the build state, so a later plan can say what changed)."""
    return {"stage": step.stage, "config": step.config(),
            "upstream": {u: upstream_keys.get(u, "") for u in step.upstream},
            "trees": {t: fingerprints.get(t, "") for t in step.trees}}


def step_key(material: Mapping[str, Any]) -> str:
    canon = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Decision:
    step: str
    stage: str
    run: bool
    reason: str
    key: str
    material: Mapping[str, Any]


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def decide(step: Step, material: Mapping[str, Any], record: Mapping[str, Any] | None, *, force: bool = False,
           exists: Callable[[str], bool] = fs.exists) -> Decision:
    """Run or skip ``step`` (key from ``material``) given its last record; the reason in words."""
    key = step_key(material)

    def out(run: bool, reason: str) -> Decision:
        return Decision(step.name, step.stage, run, reason, key, material)

    if force:
        return out(True, "forced (--force)")
    if not record:
        return out(True, "not built yet (or interrupted: it continues from what it committed)")
    if record.get("key") != key:
        old = record.get("config") or {}
        ups = _changed(old.get("upstream") or {}, material["upstream"])
        if ups:
            return out(True, f"upstream changed: {', '.join(ups)}")
        fields = _changed(old.get("config") or {}, material["config"])
        if fields:
            return out(True, f"config changed: {', '.join(fields)}")
        trees = _changed(old.get("trees") or {}, material["trees"])
        if trees:
            return out(True, f"input files changed under {', '.join(trees)}")
        return out(True, "key changed")
    outputs = record.get("outputs") or {}
    missing = [str(v) for k, v in outputs.items() if k in LOCATION_OUTPUTS and v and not exists(str(v))]
    if missing:
        return out(True, f"output missing: {missing[0]}")
    return out(False, f"up to date ({describe_outputs(outputs)})")


def describe_outputs(outputs: Mapping[str, Any]) -> str:
    """A step's outputs in a few words: ``store v-1a2b…``, ``checkpoint sha256 9f…``, ``corpus c-…``."""
    parts = []
    if outputs.get("store_version"):
        parts.append(f"store {outputs['store_version']}")
    if outputs.get("checkpoint_sha256"):
        parts.append(f"tokenizer sha256 {str(outputs['checkpoint_sha256'])[:12]}")
    if outputs.get("corpus_version"):
        parts.append(f"corpus {outputs['corpus_version']}")
    for run in ("pretrain_run", "tune_run"):
        if outputs.get(run):
            parts.append(f"run {str(outputs[run]).rstrip('/').rsplit('/', 1)[-1]}")
    if outputs.get("evaluation"):
        parts.append(f"evaluation {str(outputs['evaluation']).rstrip('/').rsplit('/', 1)[-1]}")
    if outputs.get("synth"):
        parts.append("inputs generated")
    return ", ".join(parts) or "done"


def plan(steps: list[Step], state: Mapping[str, Mapping[str, Any]], *, force: tuple[str, ...] = (),
         fingerprint_fn: Callable[[str], str] = fingerprint, exists: Callable[[str], bool] = fs.exists,
         ) -> list[Decision]:
    """The decision for every step, in order (what ``--dry-run`` prints)."""
    keys: dict[str, str] = {}
    out = []
    for s in steps:
        material = key_material(s, keys, {t: fingerprint_fn(t) for t in s.trees})
        d = decide(s, material, state.get(s.name), force=s.name in force or s.stage in force, exists=exists)
        keys[s.name] = d.key
        out.append(d)
    return out


def wire(step: Step, key: str, outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """The params ``step`` runs with: its inputs from upstream steps' ``outputs``, a keyed run folder when asked."""
    update: dict[str, Any] = {}
    for fld, (src, name) in step.takes.items():
        value = (outputs.get(src) or {}).get(name)
        if value is not None:
            update[fld] = [value] if isinstance(getattr(step.params, fld, None), tuple | list) else value
    if step.keyed_out:
        update["out"] = fs.join(fs.normalize_url(step.params.out), f"t-{key[:12]}")
    if not update:
        return step.params
    return type(step.params).model_validate({**step.params.model_dump(), **update})
