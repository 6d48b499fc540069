"""``neurolm ask FILE "question"``: one EEG file, one task, the model's answer and its option probabilities.

The file goes through what ingestion does to a dataset's recording: read (any supported format,
:mod:`neurolm.readers`), keep the task's dataset channels in the adapter's order
(:func:`neurolm.vocab.select_channels`, ``reorder=True``), standardize with the
:class:`~neurolm.standardize.StandardizeConfig` of the store version the model was tuned from (its
lineage: labeled corpus -> store version; NeuroLM's default when that cannot be read, and the answer
says so) and the dataset's notch, cut the task's window
(the first one, or from ``start_s``), tokenize with the frozen tokenizer, then score every option
(:mod:`.scoring`) and generate the answer (:mod:`.generate`) with the task's exact prompt.

The task is ``task`` when given, else the one whose question the text is, or is the only one to
contain (case and spacing ignored, with or without "Question:" / "Answer:"). A file that cannot
serve the task (missing channels, too short) raises :class:`BadInputError` with a one-line reason,
before the model is loaded.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import torch

from neurolm.errors import BadInputError, ConfigError
from neurolm.instruct.evaluate import find_key, load_model, model_lineage, tuned_positions
from neurolm.instruct.generate import greedy_generate
from neurolm.instruct.scoring import answer_options, option_probabilities, score_options
from neurolm.instruct.tasks import EEG_MAX_LEN, TASKS, Task, eval_ids, get_task
from neurolm.samples import PATCH, SFREQ


def window_samples(dataset: str) -> int:
    """Length (samples at 200 Hz) of one labeled window of ``dataset``, as its adapter cuts it."""
    from neurolm.datasets import hmc, seed, tuab, tuev, tusl, workload

    return {"tuab": tuab.WINDOW, "tuev": 2 * tuev.HALF + tuev.EVENT, "seed": seed.WINDOW, "hmc": hmc.EPOCH,
            "workload": workload.WINDOW, "tusl": tusl.EVENT}[dataset]


def _norm(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower())
    return re.sub(r"\s*answer:\s*\(?$", "", text).strip()


def resolve_task(question: str, task: str | None = None) -> Task:
    """The task named ``task``, else the one whose question ``question`` is; ConfigError otherwise."""
    if task:
        return get_task(task)
    q = re.sub(r"^question:\s*", "", _norm(question))
    exact = [t for t in TASKS.values() if re.sub(r"^question: ", "", _norm(t.question)) == q]
    within = [t for t in TASKS.values() if len(q) >= 10 and q in _norm(t.question)]
    for hits in (exact, within):
        if len(hits) == 1:
            return hits[0]
    raise ConfigError("the question matches no task's prompt: pass --task (" + ", ".join(TASKS) + "); the prompts are "
                      + "; ".join(f"{t.name}: {t.question!r}" for t in TASKS.values()))


def training_standardization(model_dir: str) -> tuple[Any, str]:
    """(StandardizeConfig, where it came from) of the store version the model's labeled corpus was cut from.

    A file must be standardized as the training windows were (band, notch, rate, units): a store
    rebuilt with another config gives another model. Falls back to NeuroLM's default config when
    the lineage, the corpus or the store cannot be read (a model folder copied elsewhere).
    """
    from neurolm.standardize import StandardizeConfig
    from storage import versions
    from storage.token_corpus import TokenCorpusStore

    lin = model_lineage(model_dir)
    corpus, corpus_version = lin.get("corpus"), lin.get("corpus_version")
    try:
        store = TokenCorpusStore.open(corpus)
        clin = (store.version(corpus_version) if corpus_version else store.resolve()).lineage()
        store_url, store_version = clin["info"]["store_url"], clin["identity"]["store_version"]
        config = versions.load_config(versions.read_version_meta(store_url, store_version)["standardize"])
    except Exception:  # any missing or unreadable link: the default, said in the answer
        return StandardizeConfig(), "NeuroLM's default (the model's store version could not be read)"
    if not isinstance(config, StandardizeConfig):
        return StandardizeConfig(), f"NeuroLM's default (store {store_url} version {store_version} has a config " \
                                    "this neurolm cannot read)"
    return config, f"store {store_url} version {store_version}"


def read_window(path: str, task: Task, start_s: float = 0.0, config: Any = None,
                ) -> tuple[np.ndarray, tuple[int, ...], tuple[str, ...]]:
    """(signal [n_ch, window] in model units at 200 Hz, vocabulary indices, channel names) of ``path``.

    ``config``: the StandardizeConfig to use (default: NeuroLM's).
    """
    from neurolm.datasets import get_adapter
    from neurolm.readers import read_header, read_recording
    from neurolm.standardize import StandardizeConfig, standardize
    from neurolm.vocab import select_channels

    adapter = get_adapter(task.dataset)
    win = window_samples(task.dataset)
    header = read_header(path)
    try:
        sel = select_channels(header.ch_names, adapter.channels, reorder=True, units=header.ch_units or None)
    except BadInputError as exc:
        raise BadInputError(f"{path} cannot serve task {task.name} ({task.dataset} needs "
                            f"{', '.join(adapter.channels)}): {exc}") from None
    need = start_s + win / SFREQ
    if start_s < 0 or header.duration_s < need:
        raise BadInputError(f"{path} cannot serve task {task.name}: too short ({header.duration_s:.1f} s); the task "
                            f"reads a {win / SFREQ:g} s window from {start_s:g} s")
    raw = read_recording(path, picks=[header.ch_names[p] for p in sel.positions])
    sel = dataclasses.replace(sel, positions=tuple(range(len(sel.positions))))
    rec = standardize(raw, sel, config or StandardizeConfig(), notch_hz=adapter.notch_hz)
    a = int(round(start_s * SFREQ))
    sig = rec.data[:, a: a + win]
    if sig.shape[1] < win:
        raise BadInputError(f"{path} cannot serve task {task.name}: after standardization it holds "
                            f"{rec.data.shape[1] / SFREQ:.1f} s, the window ends at {need:g} s")
    return sig, tuple(rec.ch_indices), tuple(rec.ch_names)


def load_tokenizer_for(model_dir: str, tokenizer: str | None, model_cfg):
    """The frozen tokenizer of the model: ``tokenizer`` or the checkpoint its lineage names (sha256 checked)."""
    from neurolm.lm.data import load_corpus_tokenizer

    lin = model_lineage(model_dir)
    path = tokenizer or find_key(lin, "tokenizer")
    if not path or not isinstance(path, str):
        raise ConfigError(f"the lineage of {model_dir} names no tokenizer checkpoint: pass --tokenizer")
    tok = load_corpus_tokenizer(path, {"tokenizer_sha256": find_key(lin, "tokenizer_sha256")})
    if tok.config.config_hash() != model_cfg.tokenizer.config_hash():
        raise ConfigError(f"tokenizer {path} has config {tok.config.config_hash()}, the model expects "
                          f"{model_cfg.tokenizer.config_hash()}")
    return tok


def eeg_batch(sig: np.ndarray, ch_indices: tuple[int, ...], vq, input_mode: str, device) -> dict[str, torch.Tensor]:
    """The model's EEG batch (one row) of a window: codes (and patches in features mode)."""
    from neurolm.tokenizer import build_sample

    n_tok = len(ch_indices) * (sig.shape[1] // PATCH)
    if n_tok > EEG_MAX_LEN:
        raise BadInputError(f"the window holds {n_tok} EEG tokens, more than NeuroLM's {EEG_MAX_LEN}: refused")
    if n_tok > vq.config.max_tokens:
        raise BadInputError(f"the window holds {n_tok} EEG tokens, more than the tokenizer takes "
                            f"({vq.config.max_tokens})")
    s = build_sample(sig, ch_indices, max_tokens=vq.config.max_tokens)
    b = {k: v[None].to(device) for k, v in s.items()}
    with torch.no_grad():
        codes = vq.encode_codes(b["x"], b["ch"], b["time"], b["mask"])
    out = {"codes": codes.clamp(min=0), "ch": b["ch"], "time": b["time"], "mask": b["mask"]}
    if input_mode == "features":
        out["x"] = b["x"]
    return {k: v[:, :n_tok] for k, v in out.items()}


def ask(path: str, question: str, *, model_dir: str, task: str | None = None, tokenizer: str | None = None,
        start_s: float = 0.0, device: str = "cpu", bpe: str = "auto") -> dict[str, Any]:
    """Answer ``question`` about ``path`` (module doc): task, option probabilities, generated answer."""
    from neurolm.lm.text import load_gpt2_bpe

    t = resolve_task(question, task)
    config, config_source = training_standardization(model_dir)
    sig, ch_idx, names = read_window(path, t, start_s, config)  # the file's problems first, before any model loads
    model = load_model(model_dir, device=device)
    vq = load_tokenizer_for(model_dir, tokenizer, model.config).to(device)
    batch = eeg_batch(sig, ch_idx, vq, model.config.input_mode, device)
    bpe_tok = load_gpt2_bpe(bpe)
    prompt, options = eval_ids(t, bpe_tok), answer_options(t, bpe_tok)
    positions = tuned_positions(model_dir)  # one window: "own" and "reference" give the same positions
    probs = option_probabilities(score_options(model, batch, prompt, options, positions))[0].tolist()
    gen, _ = greedy_generate(model, batch, prompt, positions=positions)
    generated = bpe_tok.decode(gen[0].tolist())
    parsed = t.parse(bpe_tok.decode(prompt[1:] + gen[0].tolist()))
    return {
        "file": path, "task": t.name, "prompt": t.eval_text(), "channels": list(names), "start_s": float(start_s),
        "standardization": config_source,
        "window_s": sig.shape[1] / SFREQ, "n_eeg_tokens": int(batch["mask"].sum()),
        "options": [{"label": k, "answer": t.answers[k], "class": t.class_names[k], "probability": p}
                    for k, p in enumerate(probs)],
        "best": t.class_names[int(np.argmax(probs))],
        "generated": generated, "generated_class": None if parsed is None else t.class_names[parsed],
    }
