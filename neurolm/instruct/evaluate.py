"""Evaluation of tuned models on a labeled token corpus: :func:`evaluate` (the stage) and :func:`evaluate_model`.

Before any forward pass (one clear error each): the corpus is labeled (lineage ``kind: labeled``,
manifest ``task``/``label`` columns), every task is known, every window fits the 276 EEG tokens of
the original (a longer one is refused with its size, never truncated), and the model belongs to
the corpus: same codebook size, tokenizer config, channel vocabulary and — when the model folder's
lineage names it — the same tokenizer checkpoint (sha256).

Per task and split: option scoring (:mod:`.scoring`) and greedy generation (:mod:`.generate`) on
each batch, then :mod:`.metrics`. Several model folders (seeds) give mean ± std. Outputs in
``OUT``: ``results.json`` (full precision), ``results.parquet`` (the RESULTS table), ``tables.md``
(paper-shaped, rounded), confusion-matrix PNGs, a bar chart and ``report.md`` embedding them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neurolm.corpus.reader import TokenCorpus, collate_tokens
from neurolm.errors import ConfigError, StoreError
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.generate import greedy_generate
from neurolm.instruct.metrics import confusion, generation_metrics, option_metrics, reference_metrics
from neurolm.instruct.scoring import answer_options, option_probabilities, score_options
from neurolm.instruct.tasks import EEG_MAX_LEN, TASKS, Task, eval_ids, get_task
from neurolm.lm.data import SignalPatches, identity
from neurolm.vocab import VOCAB_VERSION

_SYNTHETIC = "synthetic"
LABEL_COLUMNS = ("task", "label")


def _quiet(*_a, **_k) -> None:
    return None


# -- lineage ----------------------------------------------------------------------------------------
def find_key(doc: Any, key: str) -> Any:
    """The value of ``key`` nearest the top of a nested lineage document (breadth first); None if absent."""
    level = [doc]
    while level:
        nxt = []
        for d in level:
            if isinstance(d, dict):
                if d.get(key) is not None:
                    return d[key]
                nxt += list(d.values())
            elif isinstance(d, list):
                nxt += d
        level = nxt
    return None


def load_model(model_dir: str, device: str = "cpu"):
    """:func:`neurolm.lm.io.load_lm` without transformers' "Loading weights" progress bar."""
    from transformers.utils import logging as hf_logging

    from neurolm.lm.io import load_lm

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load_lm(model_dir, device=device)
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def model_lineage(model_dir: str) -> dict[str, Any]:
    """The lineage of a model folder: ``DIR/lineage.json`` or its run folder's (``DIR/../lineage.json``)."""
    for p in (os.path.join(model_dir, "lineage.json"), os.path.join(os.path.dirname(os.path.abspath(model_dir)),
                                                                    "lineage.json")):
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                return json.load(f)
    return {}


INSTRUCT_FILE = "instruct.json"  # written by the tuning run into its model folder


def tuned_positions(model_dir: str, given: str | None = None) -> str:
    """Text-position mode to evaluate with: ``given``, else the one the model was tuned with, else "own"."""
    if given:
        return given
    p = os.path.join(model_dir, INSTRUCT_FILE)
    if os.path.isfile(p):
        with open(p, encoding="utf-8") as f:
            mode = (json.load(f) or {}).get("positions")
        if mode in ("own", "reference"):
            return mode
    return "own"


def is_labeled(lineage: dict[str, Any]) -> bool:
    return any(isinstance(d, dict) and d.get("kind") == "labeled"
               for d in (lineage, lineage.get("identity"), lineage.get("info")))


def is_synthetic(lineage: dict[str, Any]) -> bool:
    """A corpus made from synthetic data: its lineage says so (any identity/info field ``synthetic``)."""
    ident, info = identity(lineage), lineage.get("info") or {}
    return (_SYNTHETIC in {str(v) for v in ident.values()} or bool(info.get("synthetic"))
            or bool(ident.get("synthetic")) or bool(lineage.get("synthetic")))


def check_labeled(corpus: TokenCorpus, url: str) -> None:
    missing = [c for c in LABEL_COLUMNS if c not in corpus.manifest.columns]
    if not is_labeled(corpus.lineage) or missing:
        why = f"its manifest has no {', '.join(missing)} column" if missing else "its lineage is not kind 'labeled'"
        raise ConfigError(f"corpus {url} is not a labeled corpus ({why}): make one with "
                          "`neurolm tokenize --store S --tokenizer T --out C --labeled`")


def check_model_corpus(cfg, model_lin: dict[str, Any], corpus_lin: dict[str, Any], model_dir: str) -> None:
    """ConfigError when the model's tokenizer/vocabulary lineage does not match the corpus's."""
    info, ident = corpus_lin.get("info") or {}, identity(corpus_lin)
    n = info.get("codebook_size")
    if n is not None and int(n) != cfg.codebook_size:
        raise ConfigError(f"corpus codes come from a {n}-code codebook but model {model_dir} has "
                          f"{cfg.codebook_size} EEG codes")
    h = ident.get("tokenizer_config_hash")
    if h not in (None, _SYNTHETIC) and h != cfg.tokenizer.config_hash():
        raise ConfigError(f"corpus was tokenized with tokenizer config {h}; model {model_dir} was built for "
                          f"{cfg.tokenizer.config_hash()}")
    for key, what in (("tokenizer_sha256", "tokenizer checkpoint"), ("vocab_version", "channel vocabulary")):
        mine, theirs = find_key(model_lin, key), ident.get(key)
        if mine not in (None, _SYNTHETIC) and theirs not in (None, _SYNTHETIC) and mine != theirs:
            raise ConfigError(f"model {model_dir} was trained on codes of {what} {str(mine)[:16]}, the corpus "
                              f"holds codes of {str(theirs)[:16]}: its answers would be about other tokens")
    vv = ident.get("vocab_version")
    if vv not in (None, _SYNTHETIC) and vv != VOCAB_VERSION:
        raise ConfigError(f"corpus uses channel vocabulary {vv!r}, this code {VOCAB_VERSION!r}")


# -- samples ----------------------------------------------------------------------------------------
def task_groups(corpus: TokenCorpus, splits: tuple[str, ...], tasks: tuple[str, ...] | None,
                max_samples: int | None) -> dict[tuple[str, str], list[int]]:
    """Selected-sample indices per (task key, split), in corpus order; errors before any work."""
    man = corpus.manifest.iloc[corpus.selected].reset_index(drop=True)
    known = {str(t): get_task(str(t)).name for t in man["task"].unique()}  # ConfigError: unknown task
    wanted = None if tasks is None else {get_task(t).name for t in tasks}
    if wanted is not None and not wanted <= set(known.values()):
        raise ConfigError(f"task(s) {sorted(wanted - set(known.values()))} are not in the corpus; it holds "
                          f"{sorted(set(known.values()))}")
    groups: dict[tuple[str, str], list[int]] = {}
    keys = man["task"].map(known)
    for (name, split), rows in man.groupby([keys, man["split"]], sort=False):
        if split not in splits or (wanted is not None and name not in wanted):
            continue
        idx = rows.index.to_numpy()
        groups[(name, split)] = idx[: max_samples].tolist() if max_samples else idx.tolist()
    if not groups:
        raise ConfigError(f"the corpus has no labeled samples in split(s) {list(splits)}"
                          + (f" for task(s) {sorted(wanted)}" if wanted else ""))
    for (name, split), idx in groups.items():
        ntok = man["n_tokens"].to_numpy()[idx]
        labels = man["label"].to_numpy()[idx]
        task = get_task(name)
        if int(ntok.max()) > EEG_MAX_LEN:
            i = idx[int(ntok.argmax())]
            raise ConfigError(f"task {name} ({split}): window {man['recording_id'][i]}@{man['window_start'][i]} "
                              f"holds {int(ntok.max())} EEG tokens, more than NeuroLM's {EEG_MAX_LEN}: refused "
                              "(never truncated)")
        if labels.min() < 0 or labels.max() >= task.n_classes:
            raise ConfigError(f"task {name} ({split}): labels outside 0..{task.n_classes - 1}")
    order = list(TASKS)
    return dict(sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), splits.index(kv[0][1]))))


def _batches(corpus: TokenCorpus, idx: list[int], batch_size: int, signals: SignalPatches | None, device):
    man = corpus.manifest
    for a in range(0, len(idx), batch_size):
        chunk = idx[a: a + batch_size]
        samples = [corpus[i] for i in chunk]
        width = max(len(s["codes"]) for s in samples)
        b = collate_tokens(samples, max_len=width)
        b.pop("targets")
        if signals is not None:
            b["x"] = torch.stack([signals.sample(man.iloc[corpus.locate(i)[2]], torch.from_numpy(s["ch"]),
                                                 torch.from_numpy(s["time"]), width)
                                  for i, s in zip(chunk, samples)])
        yield chunk, {k: v.to(device) for k, v in b.items()}


# -- one model --------------------------------------------------------------------------------------
def run_task(model, corpus: TokenCorpus, idx: list[int], task: Task, tok, batch_size: int, device,
             signals: SignalPatches | None = None, positions: str = "own") -> dict[str, Any]:
    """Labels, option probabilities, parsed answers and decoded texts of samples ``idx`` of ``task``."""
    prompt = eval_ids(task, tok)
    options = answer_options(task, tok)
    labels = corpus.manifest["label"].to_numpy()[corpus.selected[idx]].astype(np.int64)
    probs, parsed, texts = [], [], []
    for _, batch in _batches(corpus, idx, batch_size, signals, device):
        probs.append(option_probabilities(score_options(model, batch, prompt, options, positions)).cpu().numpy())
        gen, _ = greedy_generate(model, batch, prompt, positions=positions)
        for row in gen.tolist():
            text = tok.decode(prompt[1:] + row)  # the original decodes without [SEP]
            texts.append(text)
            parsed.append(task.parse(text))
    return {"labels": labels, "probs": np.concatenate(probs), "parsed": parsed, "texts": texts}


def task_result(task: Task, split: str, out: dict[str, Any], reference: bool) -> dict[str, Any]:
    """The JSON row of one task and split (full precision) plus its confusion matrices."""
    y, probs, parsed = out["labels"], out["probs"], out["parsed"]
    row: dict[str, Any] = {"task": task.name, "dataset": task.dataset, "split": split, "n": int(len(y)),
                           **option_metrics(y, probs, task.kind), **generation_metrics(y, parsed, task.n_classes)}
    if reference:
        row.update(reference_metrics(y, parsed, task.n_classes, task.kind))
    prompt_len = len(task.eval_text())
    row["unparsable_examples"] = [t[prompt_len:] for t, p in zip(out["texts"], parsed) if p is None][:3]
    row["confusion_options"] = confusion(y, probs.argmax(axis=1).tolist(), task.n_classes)[:, :-1].tolist()
    row["confusion_generation"] = confusion(y, parsed, task.n_classes).tolist()
    return row


def evaluate_one(model_dir: str, corpus: TokenCorpus, groups, params: EvaluateParams, tok,
                 log: Callable[[str], None] = _quiet, emit: Callable[[dict], None] = _quiet) -> list[dict[str, Any]]:
    """Rows (task × split) of one model folder."""
    from neurolm.training import resolve_device

    device = resolve_device(params.device)
    model = load_model(model_dir, device=str(device))
    check_model_corpus(model.config, model_lineage(model_dir), corpus.lineage, model_dir)
    signals = SignalPatches(corpus.lineage) if model.config.input_mode == "features" else None
    positions = tuned_positions(model_dir, params.positions)
    rows = []
    for (name, split), idx in groups.items():
        task = get_task(name)
        t0 = time.perf_counter()
        out = run_task(model, corpus, idx, task, tok, params.batch_size, device, signals, positions)
        row = task_result(task, split, out, params.metrics == "reference")
        row["positions"] = positions
        rows.append(row)
        log(f"{os.path.basename(os.path.normpath(model_dir))}: {name} {split} n={row['n']}: BAcc "
            f"{row['balanced_accuracy']:.4f} (options), {row['gen_balanced_accuracy']:.4f} (generation, "
            f"{row['unparsable']} unparsable) in {time.perf_counter() - t0:.1f} s")
        emit({"event": "task", "model": model_dir, **{k: row[k] for k in ("task", "split", "n", "balanced_accuracy",
                                                                          "unparsable")}})
    return rows


def prepare(params: EvaluateParams) -> tuple[TokenCorpus, dict[tuple[str, str], list[int]]]:
    """Open and check the corpus and the model folders (configs only) before any work."""
    from neurolm.lm.io import CONFIG_FILE

    try:
        probe = TokenCorpus.open(params.corpus, version=params.corpus_version)
        check_labeled(probe, params.corpus)
        corpus = TokenCorpus.open(params.corpus, version=probe.version_id, splits=params.splits)
    except StoreError as exc:
        raise StoreError(f"cannot open corpus {params.corpus}: {exc}") from None
    groups = task_groups(corpus, params.splits, params.tasks, params.max_samples)
    from neurolm.lm.config import LMConfig

    for m in params.models:
        p = os.path.join(m, CONFIG_FILE)
        if not os.path.isfile(p):
            raise StoreError(f"{m} is not a neurolm model folder (no {CONFIG_FILE})")
        with open(p, encoding="utf-8") as f:
            cfg = LMConfig(**json.load(f)["config"])
        check_model_corpus(cfg, model_lineage(m), corpus.lineage, m)
    return corpus, groups


def aggregate(per_model: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mean over models of every numeric field per (task, split); ``std`` (ddof 1) when there are several."""
    out = []
    for rows in zip(*per_model):
        first = rows[0]
        row = dict(first)
        numeric = [k for k, v in first.items() if isinstance(v, (int, float)) and k not in ("n",)]
        if len(rows) > 1:
            row["std"] = {}
            for k in numeric:
                vals = np.array([r[k] for r in rows], dtype=np.float64)
                row[k] = float(vals.mean())
                row["std"][k] = float(vals.std(ddof=1))
            for k in ("confusion_options", "confusion_generation"):
                row[k] = np.sum([r[k] for r in rows], axis=0).tolist()
            row["unparsable_examples"] = [e for r in rows for e in r["unparsable_examples"]][:3]
        row["n_models"] = len(rows)
        out.append(row)
    return out


def default_out(params: EvaluateParams, corpus: TokenCorpus) -> str:
    if params.out:
        return params.out
    base = os.path.dirname(os.path.abspath(params.models[0]))
    return os.path.join(base, "evaluation", corpus.version_id)


def evaluate(params: EvaluateParams, *, log: Callable[[str], None] = _quiet,
             emit: Callable[[dict], None] = _quiet) -> dict[str, Any]:
    """Evaluate every model folder of ``params``; writes the outputs (module doc) and returns the summary."""
    from neurolm.instruct import eval_report as report
    from neurolm.lm.text import load_gpt2_bpe

    t0 = time.perf_counter()
    corpus, groups = prepare(params)
    tok = load_gpt2_bpe(params.bpe)
    for name in {n for n, _ in groups}:
        answer_options(get_task(name), tok)  # an option that tokenizes differently fails before any work
    synthetic = is_synthetic(corpus.lineage) if params.synthetic is None else params.synthetic
    emit({"event": "plan", "tasks": [f"{n}/{s}" for n, s in groups], "models": list(params.models)})
    per_model = [evaluate_one(m, corpus, groups, params, tok, log, emit) for m in params.models]
    rows = aggregate(per_model)
    out_dir = default_out(params, corpus)
    summary: dict[str, Any] = {
        "models": list(params.models), "corpus": params.corpus, "corpus_version": corpus.version_id,
        "splits": list(params.splits), "metrics": params.metrics, "synthetic": synthetic, "results": rows,
        "per_model": per_model if len(per_model) > 1 else None, "out": out_dir,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    summary["files"] = report.write_outputs(summary, out_dir)
    summary["outputs"] = {"evaluation": out_dir, "results": summary["files"]["results_json"]}
    summary["model_cards"] = refresh_model_cards(params.models, log)
    return summary


def refresh_model_cards(models: tuple[str, ...] | list[str], log: Callable[[str], None] = _quiet) -> list[str]:
    """Rewrite the model card of every evaluated model that is a tuning run's ``RUN/model`` folder.

    The card lists the evaluations under ``RUN/evaluation/`` (the default ``--out``). A card that
    cannot be written is logged, never fatal: the evaluation's own outputs are already complete.
    """
    from neurolm.instruct.model_card import write_model_card

    cards = []
    for model_dir in models:
        run_dir = os.path.dirname(os.path.abspath(model_dir.rstrip("/")))
        if not (os.path.isfile(os.path.join(run_dir, "lineage.json"))
                and os.path.isfile(os.path.join(model_dir, "instruct.json"))):
            continue  # not a tuning run's model folder (e.g. an imported or copied model)
        try:
            cards.append(write_model_card(run_dir))
        except OSError as exc:
            log(f"model card of {model_dir} not written: {exc}")
    return cards


def evaluate_model(model_dir: str, corpus_url: str, *, splits: tuple[str, ...] = ("val", "test"),
                   metrics: str = "honest", device: str = "cpu", batch_size: int = 16,
                   out: str | None = None, tasks: tuple[str, ...] | None = None, bpe: str = "auto",
                   corpus_version: str | None = None, positions: str | None = None,
                   log: Callable[[str], None] = _quiet) -> dict[str, Any]:
    """Evaluate one model folder on a labeled corpus (what the tuning run calls at its end)."""
    params = EvaluateParams.build(models=(model_dir,), corpus=corpus_url, splits=tuple(splits), metrics=metrics,
                                  device=device, batch_size=batch_size, out=out, tasks=tasks, bpe=bpe,
                                  corpus_version=corpus_version, positions=positions)
    return evaluate(params, log=log)
