"""What each stage hands the next: the ``outputs`` mapping of every stage summary.

Every stage's library function returns a summary dict (or result) carrying
``outputs``; the next stage takes these keys as its inputs, so a build pipeline
chains stages without knowing their summaries:

==================  ==================================================================
stage               ``outputs``
==================  ==================================================================
ingest              ``store``, ``store_version``
ingest-dataset      ``store``, ``store_version``
rebuild             ``store``, ``store_version`` (the version built)
train-tokenizer     ``checkpoint``, ``checkpoint_sha256``, ``tokenizer_config_hash``
tokenize            ``corpus``, ``corpus_version``
pretrain            ``model``, ``model_config_hash``, ``pretrain_run``
==================  ==================================================================
"""

from __future__ import annotations


def store_outputs(url: str, version_id: str) -> dict[str, str]:
    """A signal store and the version a stage wrote (ingest, ingest-dataset, rebuild)."""
    return {"store": url, "store_version": version_id}


def checkpoint_outputs(checkpoint: str, sha256: str, config_hash: str) -> dict[str, str]:
    """A tokenizer checkpoint, its weights' sha256 and the tokenizer config hash (train-tokenizer)."""
    return {"checkpoint": checkpoint, "checkpoint_sha256": sha256, "tokenizer_config_hash": config_hash}


def corpus_outputs(url: str, version_id: str) -> dict[str, str]:
    """A token corpus and the version a stage wrote (tokenize)."""
    return {"corpus": url, "corpus_version": version_id}


def model_outputs(model_dir: str, config_hash: str, run_dir: str) -> dict[str, str]:
    """A stage-2 model folder (save_lm layout), its LMConfig hash and the run folder it came from (pretrain)."""
    return {"model": model_dir, "model_config_hash": config_hash, "pretrain_run": run_dir}
