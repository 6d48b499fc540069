"""The model card: ``README.md`` in a tuned model folder, written from what the run recorded.

A tuned model folder (``RUN/model``) is what a user copies elsewhere. Its card says, from the
run's own records only (``RUN/lineage.json``, ``RUN/summary.json``, the model's config, and every
evaluation under ``RUN/evaluation/*/results.json``):

- what it is (architecture, size, input mode) and how to load it;
- the data it was built from (labeled corpus and version, pretraining corpus, tokenizer, vocabulary,
  store), with content hashes;
- the training configuration;
- the evaluation tables with their protocol (or that it has not been evaluated yet);
- how it departs from the original NeuroLM, and its intended use and limits.

The tuning stage writes it when training ends; ``neurolm evaluate`` rewrites it with the tables
of every evaluation of the run. The card is not part of the model's hash (only ``*.safetensors``
and ``*.json`` files are), so writing it never changes a lineage key.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from storage import fs

CARD_FILE = "README.md"

#: The paper's parameter counts of the published sizes (reference §9), for the card's size line.
_SIZES = {"B": "GPT-2 (124 M) backbone", "L": "GPT-2 medium (355 M) backbone", "XL": "GPT-2 XL (1.5 B) backbone"}


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _evaluations(run_dir: str) -> list[dict[str, Any]]:
    """Every evaluation of the run (``RUN/evaluation/*/results.json``), oldest first."""
    paths = sorted(glob.glob(os.path.join(run_dir, "evaluation", "*", "results.json")), key=os.path.getmtime)
    docs = []
    for path in paths:
        doc = _read_json(path)
        if doc is not None:
            tables = os.path.join(os.path.dirname(path), "tables.md")
            doc["_tables_md"] = open(tables, encoding="utf-8").read() if os.path.isfile(tables) else ""
            doc["_dir"] = os.path.dirname(path)
            docs.append(doc)
    return docs


def _model_config(model_dir: str) -> dict[str, Any]:
    doc = _read_json(os.path.join(model_dir, "neurolm_config.json")) or {}
    return doc.get("config", {})


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def summary_table(results: list[dict[str, Any]]) -> list[str]:
    """One line per task and split: n, option-scoring BAcc, generation BAcc, unparsable."""
    lines = ["| task | split | n | BAcc (option scoring) | BAcc (generation) | unparsable |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['task'].upper()} | {r['split']} | {r['n']} | {_pct(r.get('balanced_accuracy'))} | "
                     f"{_pct(r.get('gen_balanced_accuracy'))} | {r.get('unparsable', '—')} |")
    return lines


def _models_line(ev: dict[str, Any], model_dir: str) -> list[str]:
    """A note when the evaluation's numbers are a mean over several models (seeds), not this one's alone."""
    models = ev.get("models") or []
    if len(models) <= 1:
        return []
    others = [m for m in models if os.path.abspath(m) != os.path.abspath(model_dir)]
    return [f"Mean ± std over {len(models)} models: this one and {', '.join(f'`{m}`' for m in others)}.", ""]


def _deviations(cfg: dict[str, Any], lineage: dict[str, Any]) -> list[str]:
    """The departures from the original NeuroLM that this model carries, from its recorded settings."""
    out = []
    if cfg.get("input_mode", "codes") == "codes":
        out.append("- **EEG inputs are codebook vectors** (`input_mode: codes`): the GPT reads the tokenizer's "
                   "code embeddings from the token corpus, not the frozen encoder's features of the signal "
                   "(the original's `features` mode).")
    if lineage.get("positions", "own") == "own":
        out.append("- **Text positions follow each sample's own last second** (`positions: own`); the original "
                   "starts the text after the longest EEG of the batch, so a sample's answer depended on its "
                   "batch.")
    tok = cfg.get("tokenizer", {})
    if tok.get("encoder_attention") == "causal-by-second":
        out.append("- **The tokenizer's encoder is causal across seconds** (`encoder_attention: causal-by-second`): "
                   "the original's bidirectional encoder let the feature at second t see t + 1, the next-code "
                   "target of pretraining.")
    out.append("- **Honest evaluation**: AUROC/AUC-PR from class probabilities (option scoring), unparsable "
               "answers counted as wrong and reported; the original's way is a separate row when evaluated "
               "with `--metrics reference`.")
    out.append("- **Seeded, subject-wise splits**, with the labeled datasets' evaluation subjects kept out of "
               "pretraining.")
    out.append("See docs/DEVIATIONS.md of the neurolm checkout that built it for every deviation and why.")
    return out


def model_card(run_dir: str) -> str:
    """The markdown model card of the tuning run in ``run_dir`` (see module doc)."""
    lineage = _read_json(os.path.join(run_dir, "lineage.json")) or {}
    summary = _read_json(os.path.join(run_dir, "summary.json")) or {}
    model_dir = os.path.join(run_dir, "model")
    cfg = _model_config(model_dir)
    name = cfg.get("name", lineage.get("config", "?"))
    evaluations = _evaluations(run_dir)
    synthetic = any(e.get("synthetic") for e in evaluations)
    pre = lineage.get("pretrain") or {}
    tc = lineage.get("train_config") or {}
    tasks_train = lineage.get("tasks_train") or {}
    tasks_val = lineage.get("tasks_val") or {}

    lines = [f"# NeuroLM-{name}, instruction-tuned (run `{lineage.get('run_key', '?')}`)", ""]
    if synthetic:
        lines += ["> **Trained and evaluated on a synthetic corpus.** Its numbers test the pipeline; the model "
                  "knows nothing about real EEG.", ""]
    size = _SIZES.get(name, f"{cfg.get('n_layer', '?')} layers × {cfg.get('n_embd', '?')} wide, "
                            f"{cfg.get('n_head', '?')} heads")
    lines += [
        "A multi-task EEG–language model in the NeuroLM design (arXiv 2409.00101): a GPT-2 backbone that reads "
        "1-s EEG patches of every channel as tokens, next to text, and answers each task's instruction "
        "with the class name.", "",
        f"- **Architecture**: {size}; input mode `{cfg.get('input_mode', '?')}`; attention "
        f"`{cfg.get('attn_implementation', '?')}`; tokenizer `{(cfg.get('tokenizer') or {}).get('name', '?')}` "
        f"(codebook {(cfg.get('tokenizer') or {}).get('codebook_size', '?')}).",
        f"- **Tasks**: {', '.join(t.upper() for t in sorted(tasks_train)) or '—'}.",
        "- **Load** (DIR = this folder): `transformers.GPT2Model.from_pretrained(DIR)` gives the backbone; "
        "`neurolm.lm.io.load_lm(DIR)` the whole model; `neurolm ask FILE QUESTION --model DIR` answers "
        "for one recording.", "",
        "## Data and lineage", "",
        "| what | value |", "|---|---|",
        f"| labeled corpus | `{lineage.get('corpus', '?')}` version `{lineage.get('corpus_version', '?')}` "
        f"(content `{str(lineage.get('corpus_content', '?'))[:16]}`) |",
        f"| signal store version | `{lineage.get('store_version', pre.get('store_version', '?'))}` |",
        f"| pretrained from | `{lineage.get('init', '?')}` (sha256 `{str(lineage.get('init_sha256', '?'))[:16]}`, "
        f"pretraining run `{lineage.get('pretrain_run_key') or '—'}`) |",
        f"| pretraining corpus | `{pre.get('corpus', '—')}` version `{pre.get('corpus_version', '—')}` |",
        f"| tokenizer | sha256 `{str(lineage.get('tokenizer_sha256', '?'))[:16]}` |",
        f"| channel vocabulary | `{lineage.get('vocab_version', '?')}` |",
        f"| model config hash | `{lineage.get('config_hash', '?')}` |",
        f"| text mixed in | {(lineage.get('text') or {}).get('source', '—')} |", "",
        "Training windows per task (train / val): "
        + ", ".join(f"{t.upper()} {tasks_train[t]} / {tasks_val.get(t, 0)}" for t in sorted(tasks_train)) + ".", "",
        "## Training", "",
        f"{summary.get('steps', tc.get('steps', '?'))} steps ({tc.get('epochs', '?')} epochs) of batch "
        f"{tc.get('batch_size', '?')} × {tc.get('grad_accum', 1)} × {lineage.get('processes', 1)} process(es), "
        f"AdamW β {tuple(tc.get('betas', ()))}, weight decay {tc.get('weight_decay', '?')}, lr {tc.get('lr', '?')} "
        f"→ {tc.get('min_lr', '?')} (cosine, {tc.get('warmup_steps', '?')} warm-up steps), clip "
        f"{tc.get('grad_clip', '?')}, seed {tc.get('seed', '?')}; task sampling temperature "
        f"{lineage.get('temperature', '?')}; text batch {tc.get('text_batch_size', '?')} × "
        f"{tc.get('text_seq_len', '?')} tokens per step.", "",
    ]
    val = summary.get("val") or {}
    if val:
        lines += [f"Validation at the end: answer loss {val.get('loss', float('nan')):.4f}, answer accuracy "
                  f"{val.get('answer_accuracy', float('nan')):.4f} over {val.get('samples', '?')} windows.", ""]

    lines += ["## Evaluation", ""]
    if not evaluations:
        lines += ["Not evaluated yet: `neurolm evaluate --models DIR --corpus CORPUS` writes the tables here.", ""]
    for ev in evaluations:
        lines += [f"### Corpus version `{ev.get('corpus_version', '?')}`, splits {', '.join(ev.get('splits', []))}",
                  "",
                  "Protocol: held-out subjects of the labeled corpus. *Option scoring* turns the log-likelihood of "
                  "each class's answer into class probabilities (BAcc, and AUROC/AUC-PR or κ/weighted F1 from "
                  "them); *generation* decodes greedily, parses the answer and counts an unparsable one as "
                  "wrong" + ("; *original's way* recomputes the paper's metrics as its code did."
                             if ev.get("metrics") == "reference" else "."), "",
                  *_models_line(ev, model_dir),
                  *summary_table(ev.get("results", [])), "",
                  "<details><summary>Full tables</summary>", "", ev["_tables_md"].strip(), "", "</details>", "",
                  f"Outputs (figures, RESULTS table): `{ev['_dir']}`.", ""]

    lines += ["## Deviations from the original NeuroLM", "", *_deviations(cfg, lineage), "",
              "## Intended use and limits", "",
              "- For research on EEG–language models: reproducing and extending NeuroLM, comparing tokenizers, "
              "tuning recipes and evaluation protocols.",
              "- **Not a medical device.** It has not been validated for diagnosis, monitoring or any clinical "
              "decision; its answers must not be used for patient care.",
              "- It knows only the tasks listed above, on recordings standardized the way its store was "
              "(channels mapped to the vocabulary, 200 Hz, µV/100). Other montages, rates or tasks are outside "
              "what it was trained on, and its answers there mean nothing.",
              "- Its numbers hold for the corpus version and splits shown; subjects, sites and devices not "
              "represented there may differ.", ""]
    return "\n".join(lines)


def write_model_card(run_dir: str) -> str:
    """Write (atomically) ``RUN/model/README.md``; returns its path."""
    path = os.path.join(run_dir, "model", CARD_FILE)
    fs.atomic_write_bytes(path, model_card(run_dir).encode("utf-8"))
    return path
