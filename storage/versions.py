"""Signal-store versions: one per (channel vocabulary, standardization config).

Why versions: changing a filter setting or the vocabulary changes every stored
sample, and tokenizers trained on one version must never silently read another.
A version's id is derived from both (``"v-" + sha256(vocab_version + config_hash)[:12]``),
so re-running ingestion with the same settings lands in the same version (and
resumes), while new settings create a new version next to the old one. The store
root's ``store.json`` points at the ``current`` version; switching is one atomic
file write, and readers that already opened a version keep reading it.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from pydantic import ValidationError

from neurolm.errors import ConfigError, StoreError
from neurolm.standardize import StandardizeConfig
from neurolm.vocab import VOCAB_VERSION
from storage import fs

STORE_KIND = "neurolm-signal-store"
FORMAT_VERSION = 1
VERSION_STATUSES = ("building", "complete")


def config_dump(config: Any) -> dict[str, Any]:
    """JSON-able dict of a standardize config (pydantic model, dataclass-like or dict)."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return json.loads(json.dumps(config, sort_keys=True, default=str))
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    if hasattr(config, "__dataclass_fields__"):
        import dataclasses

        return json.loads(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str))
    raise ConfigError(f"unsupported standardize config type {type(config).__name__}")


def config_hash(config: Any) -> str:
    """The config's own ``config_hash()`` when it has one, else sha256[:16] of its canonical JSON."""
    fn = getattr(config, "config_hash", None)
    if callable(fn):
        return str(fn())
    canon = json.dumps(config_dump(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def version_id_for(config: Any, vocab_version: str = VOCAB_VERSION) -> str:
    return "v-" + hashlib.sha256((vocab_version + config_hash(config)).encode()).hexdigest()[:12]


def default_config() -> StandardizeConfig:
    """The default standardization config of a new store."""
    return StandardizeConfig()


def load_config(dump: dict[str, Any]) -> Any:
    """Rebuild a StandardizeConfig from version.json; the plain dict when that fails (older/newer fields)."""
    try:
        return StandardizeConfig.model_validate(dump)
    except ValidationError:
        return dump


def store_json_url(url: str) -> str:
    return fs.join(url, "store.json")


def version_url(url: str, vid: str) -> str:
    return fs.join(url, "versions", vid)


def read_store_meta(url: str) -> dict[str, Any] | None:
    """store.json checked for kind/format; None when absent."""
    try:
        meta = fs.read_json(store_json_url(url))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # permission denied, bad URL, I/O error
        raise StoreError(f"cannot read signal store at {url}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("kind") != STORE_KIND:
        raise StoreError(f"{url} is not a neurolm signal store (store.json kind={meta.get('kind') if isinstance(meta, dict) else '?'!r})")
    fv = meta.get("format_version")
    if fv != FORMAT_VERSION:
        raise StoreError(f"signal store {url} has format_version {fv}; this neurolm reads format_version "
                         f"{FORMAT_VERSION} (re-ingest into a new store, or use a matching neurolm release)")
    return meta


def write_pointer(url: str, current: str | None) -> None:
    """Atomically (re)write store.json: the one operation that moves ``current``."""
    fs.write_json_atomic(store_json_url(url), {"kind": STORE_KIND, "format_version": FORMAT_VERSION, "current": current})


def read_version_meta(url: str, vid: str) -> dict[str, Any]:
    try:
        meta = fs.read_json(fs.join(version_url(url, vid), "version.json"))
    except FileNotFoundError:
        have = ", ".join(list_version_ids(url)) or "none"
        raise StoreError(f"signal store {url} has no version {vid!r} (available: {have})") from None
    if meta.get("vocab_version") != VOCAB_VERSION:
        raise StoreError(f"store version {vid} was built with channel vocabulary {meta.get('vocab_version')!r}; "
                         f"this neurolm uses {VOCAB_VERSION!r} (re-ingest to create a compatible version)")
    if meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise StoreError(f"store version {vid} has format_version {meta.get('format_version')}; expected {FORMAT_VERSION}")
    return meta


def create_version(url: str, config: Any) -> str:
    """Create ``versions/<vid>/version.json`` for ``config`` if absent; idempotent. Returns the id."""
    vid = version_id_for(config)
    vjson = fs.join(version_url(url, vid), "version.json")
    if not fs.exists(vjson):
        fs.write_json_atomic(vjson, {
            "version_id": vid,
            "format_version": FORMAT_VERSION,
            "vocab_version": VOCAB_VERSION,
            "standardize": config_dump(config),
            "config_hash": config_hash(config),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": "building",
        })
    return vid


def set_version_status(url: str, vid: str, status: str) -> None:
    if status not in VERSION_STATUSES:
        raise ConfigError(f"version status must be one of {VERSION_STATUSES}, got {status!r}")
    meta = read_version_meta(url, vid)
    meta["status"] = status
    fs.write_json_atomic(fs.join(version_url(url, vid), "version.json"), meta)


def list_version_ids(url: str) -> list[str]:
    return [v for v in fs.listdir(fs.join(url, "versions")) if v.startswith("v-")]


# -- raw reads across versions ---------------------------------------------------------------
# These read a version as it is on disk, without the vocabulary/format checks of
# read_version_meta: a rebuild must be able to read a version built with another
# channel vocabulary, and listing must show every version, broken ones included.


def read_version_json(url: str, vid: str) -> dict[str, Any] | None:
    """``versions/<vid>/version.json`` as stored (no compatibility checks); None when absent."""
    try:
        return fs.read_json(fs.join(version_url(url, vid), "version.json"))
    except FileNotFoundError:
        return None


def read_marker(url: str, vid: str, recording_id: str) -> dict[str, Any] | None:
    """A recording's commit marker in version ``vid`` (no compatibility checks); None when not committed."""
    try:
        return fs.read_json(fs.join(version_url(url, vid), "commits", f"{recording_id}.json"))
    except FileNotFoundError:
        return None


def commit_count(url: str, vid: str) -> int:
    """Recordings committed in version ``vid``."""
    return sum(1 for f in fs.listdir(fs.join(version_url(url, vid), "commits")) if f.endswith(".json"))


def table_url(url: str, vid: str, name: str) -> str:
    """Where version ``vid`` keeps table ``name`` (``tables/<name>.parquet``)."""
    return fs.join(version_url(url, vid), "tables", f"{name}.parquet")


def version_summaries(url: str) -> list[dict[str, Any]]:
    """Every version, oldest first: id, status, created, config hash, vocabulary, notch and band,
    recordings committed, and whether it is current. ConfigError when there is no store at ``url``."""
    url = fs.normalize_url(url)
    meta = read_store_meta(url)
    if meta is None:
        raise ConfigError(f"no signal store at {url}")
    out = []
    for vid in sorted(list_version_ids(url)):
        vm = read_version_json(url, vid) or {"status": "broken (no version.json)"}
        std = vm.get("standardize") or {}
        out.append({"version_id": vid, "status": vm.get("status"), "created": vm.get("created"),
                    "config_hash": vm.get("config_hash"), "vocab_version": vm.get("vocab_version"),
                    "notch_hz": std.get("notch_hz"), "l_freq": std.get("l_freq"), "h_freq": std.get("h_freq"),
                    "recordings": commit_count(url, vid), "current": vid == meta.get("current")})
    out.sort(key=lambda v: (str(v["created"]), v["version_id"]))
    return out


def remove_version(url: str, vid: str) -> None:
    """Delete version ``vid``'s directory. StoreError for the current version or an unknown id.

    The caller holds the store lock; readers that still have the version open lose it.
    """
    if vid == (read_store_meta(url) or {}).get("current"):
        raise StoreError(f"refusing to remove {vid}: it is the current version of {url} (switch first)")
    if vid not in list_version_ids(url):
        have = ", ".join(list_version_ids(url)) or "none"
        raise StoreError(f"signal store {url} has no version {vid!r} (versions: {have})")
    fs.rm(version_url(url, vid))
