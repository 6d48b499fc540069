"""`neurolm tune` through the Prefect flow: progress + report artifacts, the rerun doing nothing, an input error
as exit code 2 before any run."""

from __future__ import annotations

import os

from lm_cli import run_report, run_twice

from neurolm.cli import main
from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus


def test_cli_flow_artifacts_and_rerun(tmp_path, capsys):
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 4, "Workload": 4})
    init = save_untrained_model(str(tmp_path / "init"))
    args = ["tune", "--corpus", corpus, "--init", init, "--out", str(tmp_path / "runs"), "--steps", "3",
            "--batch-size", "4", "--text-seq-len", "16", "--eeg-len", "24", "--positions", "reference"]
    first, again, arts = run_twice(args, capsys, ["neurolm-tune-progress", "neurolm-tune-report"])
    assert "tuned 3 steps" in first.out and "tuab" in first.out and "workload" in first.out
    assert "nothing to do" in again.out
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].startswith("run-")
    assert {("neurolm-tune-progress", "progress"), ("neurolm-tune-report", "markdown")} <= {(a.key, a.type)
                                                                                          for a in arts}
    report = run_report(arts, "neurolm-tune-report", runs[0])
    assert runs[0][4:] in report and "data:image/png;base64," in report and "`reference`" in report
    assert os.path.isfile(tmp_path / "runs" / runs[0] / "model" / "neurolm.safetensors")
    # an input error: one line, exit code 2, before any server or run
    assert main(args[:2] + [str(tmp_path / "nowhere")] + args[3:]) == 2
    assert "neurolm tune: error" in capsys.readouterr().err


def test_the_tune_flow_pickles_without_its_listeners():
    """What Prefect pickles for a task or flow must not drag the CLI's listeners (a progress bar, a lock)."""
    import io
    import threading

    import cloudpickle
    from prefect import Flow, Task

    import flows.tune as tune_flows

    unpicklable = threading.Lock()

    def listener(event: dict) -> None:
        assert unpicklable is not None

    checked = 0
    with tune_flows._events.listening(listener):
        for name, obj in vars(tune_flows).items():
            if isinstance(obj, (Flow, Task)):
                buf = io.BytesIO()
                cloudpickle.CloudPickler(buf).dump(obj)  # raises on the lock if it is reachable
                assert buf.tell() < 200_000, f"{name} pickles to {buf.tell()} bytes"
                checked += 1
    assert checked == 2


def test_tune_help_lists_the_options(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["tune", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--positions {own,reference}" in out and "10 % of the steps" in out and "--temperature" in out
