"""Labeled token corpora (`neurolm tokenize --labeled`): one sample per LABELS row, with its task and label.

The store is built by the real dataset ingestion from two synthetic layouts
(TUEV: 23 channels, 5-s windows, two of each recording's windows wrap around
its borders; Workload: 19 channels, 4-s windows) and tokenized with a random
tiny tokenizer. Expected values come from the LABELS table and from direct
`encode_codes` calls on windows read with `read_label_window`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neurolm.cli import main
from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
from neurolm.corpus.labeled import plan_labeled, prepare_labeled_job, window_patches
from neurolm.corpus.params import TokenizeParams
from neurolm.corpus.reader import TokenCorpus
from neurolm.corpus.run import tokenize_local
from neurolm.corpus.tokenize import begin_job, tokenize_shard
from neurolm.datasets.ingest import ingest_dataset, make_dataset_params
from neurolm.datasets.synth import synth_dataset
from neurolm.datasets.windows import read_label_window
from neurolm.errors import ConfigError, StoreError
from neurolm.instruct.tasks import EEG_MAX_LEN, get_task
from neurolm.tokenizer import build_sample, load_tokenizer
from storage import checkpoints
from storage.signal_store import SignalStore


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("labeled")
    store = str(d / "store")
    for name, split in (("tuev", "paper"), ("workload", "seeded")):
        m = synth_dataset(name, d / name, seed=0)
        ingest_dataset(make_dataset_params(dataset=name, root=m["root"], store=store, split=split))
    ckpt = save_random_tokenizer(str(d / "tok"), "tiny", seed=0)
    return d, store, ckpt


@pytest.fixture(scope="module")
def built(inputs):
    d, store, ckpt = inputs
    job = prepare_labeled_job(store, ckpt, str(d / "corpus"), shard_size=64)
    out = tokenize_local(job, batch_size=16)
    return job, out, TokenCorpus.open(str(d / "corpus"))


def test_one_sample_per_labels_row_with_its_label(inputs, built):
    d, store_url, ckpt = inputs
    job, out, tc = built
    store = SignalStore.open(store_url)
    labels = store.read_table("labels")
    rec = store.read_table("recordings").set_index("recording_id")
    man = tc.manifest
    assert out["status"]["status"] == "complete" and len(tc) == len(labels) == len(man)
    got = man[["task", "recording_id", "window_start", "length", "label", "label_name", "subject", "split"]]
    want = labels.rename(columns={"start": "window_start"})[list(got.columns)]
    key = ["task", "recording_id", "window_start"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_dtype=False)
    n_ch = rec.loc[man["recording_id"], "n_channels"].to_numpy()
    assert (man["n_tokens"].to_numpy() == n_ch * man["length"].to_numpy() // 200).all()
    assert set(man["n_tokens"]) == {23 * 5, 19 * 4}  # TUEV 23 ch x 5 s, Workload 19 ch x 4 s
    assert (man["dataset"] == man["task"].map({"TUEV": "tuev", "Workload": "workload"})).all()
    for task in set(man["task"]):  # the shared task table knows every task value
        assert get_task(task).label_task == task
    lin = tc.lineage
    assert lin["kind"] == "labeled" and lin["identity"]["tasks"] == ["TUEV", "Workload"]
    assert lin["identity"]["store_version"] == store.version_id
    assert lin["identity"]["tokenizer_sha256"] == checkpoints.resolve(ckpt)[1]
    assert lin["info"]["store_url"] == store.url and lin["info"]["n_quarantined_rows"] == 0
    train = TokenCorpus.open(str(d / "corpus"), splits=("train",))
    assert set(train.manifest.iloc[train.selected]["split"]) == {"train"}
    assert len(train) == int((labels["split"] == "train").sum())


def test_codes_equal_direct_encode_of_each_window(inputs, built):
    """Including TUEV windows that wrap around the recording's end (read like the reference's 3x tiling)."""
    _, store_url, ckpt = inputs
    _, _, tc = built
    store = SignalStore.open(store_url)
    tok = load_tokenizer(ckpt)
    man = tc.manifest
    wraps = [i for i, r in enumerate(man.itertuples())
             if r.window_start + r.length > store.recording_meta(r.recording_id)["n_samples"]]
    picks = wraps[:2] + [0, len(tc) - 1]
    assert len(wraps) >= 2
    for i in picks:
        r = man.iloc[i]
        meta = store.recording_meta(r["recording_id"])
        sig = read_label_window(store, {"recording_id": r["recording_id"], "start": r["window_start"],
                                        "length": r["length"]})
        s = build_sample(sig, meta["ch_indices"], max_tokens=tok.config.max_tokens)
        with torch.inference_mode():
            codes = tok.encode_codes(*(s[k][None] for k in ("x", "ch", "time", "mask")))[0].numpy()
        n = int(s["mask"].sum())
        sample = tc[i]
        assert len(sample["codes"]) == n == r["n_tokens"]
        np.testing.assert_array_equal(sample["codes"], codes[:n])
        np.testing.assert_array_equal(sample["ch"], s["ch"][:n].numpy())
        np.testing.assert_array_equal(sample["time"], s["time"][:n].numpy())
        # features path: the raw patches of sample i, in the corpus's token order
        patches = window_patches(tc, i)
        assert patches.shape == (n, 200)
        np.testing.assert_array_equal(patches, s["x"][:n].numpy())
        n_ch = len(meta["ch_indices"])
        np.testing.assert_array_equal(patches[n_ch + 1], sig[1, 200:400])  # second 1 of channel 1


def test_rerun_resumes_and_task_selection_is_a_version(inputs, built, tmp_path):
    d, store, ckpt = inputs
    job, _, tc = built
    again = prepare_labeled_job(store, ckpt, str(d / "corpus"), shard_size=64)
    assert again.version_id == job.version_id and tokenize_local(again)["nothing_to_do"]
    same = prepare_labeled_job(store, ckpt, str(d / "corpus"), tasks=["tuev", "WORKLOAD"], shard_size=64)
    assert same.version_id == job.version_id  # all tasks, named in any case
    one = prepare_labeled_job(store, ckpt, str(d / "corpus"), tasks=["Workload"], shard_size=64)
    assert one.version_id != job.version_id and one.lineage.tasks == ("Workload",)
    assert one.n_samples == int((tc.manifest["task"] == "Workload").sum())
    # a run killed after its first shard: the rerun does only the others and gives the same content
    other = str(tmp_path / "corpus")
    part = prepare_labeled_job(store, ckpt, other, shard_size=64)
    begin_job(part)
    tokenize_shard(part.plans[0], part.store_url, part.checkpoint, part.corpus_url)
    out = tokenize_local(part)
    assert out["done_now"] == len(part.plans) - 1
    assert out["status"]["content_hash"] == tc.status["content_hash"]


def test_bad_inputs_fail_before_any_work(inputs, tmp_path):
    _, store, ckpt = inputs
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=r"task\(s\) \['SLEEP'\] not in the LABELS table.*'TUEV', 'Workload'"):
        prepare_labeled_job(store, ckpt, str(out), tasks=["SLEEP"])
    bare = str(tmp_path / "bare")
    build_signal_store(bare, n_recordings=2, n_ch=8)  # windows, no labeled dataset
    with pytest.raises(StoreError, match="no LABELS table"):
        prepare_labeled_job(bare, ckpt, str(out))
    small = save_random_tokenizer(str(tmp_path / "small"), "tiny", seed=0, max_tokens=100)
    with pytest.raises(ConfigError, match=r"TUEV: \d+ window\(s\) of 23 channels x 5 s = 115 tokens"):
        prepare_labeled_job(store, small, str(out))
    assert not out.exists()
    with pytest.raises(ConfigError, match="--tasks"):
        TokenizeParams.build(store=store, tokenizer=ckpt, out=str(out), labeled=True, datasets=("tuev",))
    with pytest.raises(ConfigError, match="add --labeled"):
        TokenizeParams.build(store=store, tokenizer=ckpt, out=str(out), tasks=("TUEV",))
    assert main(["tokenize", "--store", store, "--tokenizer", ckpt, "--out", str(out), "--labeled",
                 "--tasks", "SLEEP"]) == 2
    assert not out.exists()


def _labels(rows):
    return pd.DataFrame([{"task": t, "recording_id": r, "subject": "s", "start": s, "length": n, "label": 0,
                          "label_name": "x", "split": "train"} for t, r, s, n in rows])


def test_long_windows_are_refused_with_their_size_never_truncated():
    recs = pd.DataFrame({"recording_id": ["a", "b"], "dataset": ["tuab", "seed"], "n_channels": [23, 62],
                         "n_samples": [60_000, 60_000]})
    ok, skipped = plan_labeled(_labels([("TUAB", "a", 0, 2000), ("SEED", "b", 0, 800)]), recs, 1024, 64)
    assert [(r.task, r.n_sec) for r in ok] == [("SEED", 4), ("TUAB", 10)] and skipped == []  # 248 and 230 tokens
    assert 23 * 10 <= EEG_MAX_LEN < 23 * 13
    with pytest.raises(ConfigError, match=r"TUAB: 2 window\(s\) of 23 channels x 13 s = 299 tokens.*at most 276"):
        plan_labeled(_labels([("TUAB", "a", 0, 2600), ("TUAB", "a", 2600, 2600), ("SEED", "b", 0, 800)]),
                     recs, 1024, 64)
    with pytest.raises(ConfigError, match="x 13 s"):
        plan_labeled(_labels([("SEED", "b", 0, 2600)]), recs.assign(n_channels=[23, 1]), 1024, 12)  # time rows


def test_unreadable_rows_are_quarantined_with_a_reason():
    recs = pd.DataFrame({"recording_id": ["a"], "dataset": ["tuab"], "n_channels": [23], "n_samples": [4000]})
    ok, skipped = plan_labeled(_labels([("TUAB", "a", 0, 2000), ("TUAB", "gone", 0, 2000),
                                        ("TUAB", "a", 0, 6000), ("TUAB", "a", 0, 1500)]), recs, 1024, 64)
    assert [(r.recording_id, r.start) for r in ok] == [("a", 0)]
    assert [(s["recording_id"], s["reason"].split(" (")[0]) for s in skipped] == [
        ("a", "window of 6000 samples is longer than its recording"),
        ("a", "window of 1500 samples is not whole 200-sample"),
        ("gone", "recording not in the store's RECORDINGS table")]


def test_tokens_inspect_counts_per_task_and_split(inputs, built, capsys):
    d, store_url, _ = inputs
    _, _, tc = built
    assert main(["tokens", "inspect", str(d / "corpus"), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    labels = SignalStore.open(store_url).read_table("labels")
    want = {t: {sp: int(n) for sp, n in g.groupby("split").size().items()} for t, g in labels.groupby("task")}
    assert s["kind"] == "labeled" and {t: v["splits"] for t, v in s["by_task_split"].items()} == want
    assert main(["tokens", "inspect", str(d / "corpus")]) == 0
    text = capsys.readouterr().out
    assert "| task | train | val | test |" in text
    tuev = want["TUEV"]
    assert f"| TUEV | {tuev['train']} | {tuev['val']} | {tuev['test']} | 115 |" in text


def test_cli_passes_labeled_and_tasks():
    from neurolm.cli import build_parser

    args = build_parser().parse_args(["tokenize", "--store", "s", "--tokenizer", "t", "--out", "o", "--labeled",
                                      "--tasks", "HMC, TUAB"])
    assert args.labeled is True and args.tasks == "HMC, TUAB"
    plain = build_parser().parse_args(["tokenize", "--store", "s", "--tokenizer", "t", "--out", "o"])
    assert plain.labeled is False and plain.tasks is None
