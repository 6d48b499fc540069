"""The build's final artifact links the tuned model's card and shows the evaluation table."""

from __future__ import annotations

import json

from neurolm.build.report import result_markdown


def _result(outputs: dict) -> dict:
    return {"name": "demo", "root": "/b", "nothing_to_do": False, "ran": ["tune", "evaluate"], "wall_s": 3.0,
            "steps": [{"step": s, "action": "run", "reason": "new", "outputs": o, "wall_s": 1.0}
                      for s, o in outputs.items()], "outputs": outputs}


def test_result_shows_the_evaluation_table_and_links_the_model_card(tmp_path):
    model = tmp_path / "run-1" / "model"
    model.mkdir(parents=True)
    (model / "README.md").write_text("# card\n")
    results = tmp_path / "results.json"
    rows = [{"task": "hmc", "split": "test", "n": 20, "balanced_accuracy": 0.91234, "gen_balanced_accuracy": 0.875,
             "unparsable": 1}]
    results.write_text(json.dumps({"results": rows}))
    md = result_markdown(_result({"tune": {"model": str(model)}, "evaluate": {"results": str(results),
                                                                              "evaluation": str(tmp_path)}}))
    assert f"model card: `{model / 'README.md'}`" in md
    assert "| HMC | test | 20 | 0.9123 | 0.8750 | 1 |" in md


def test_no_card_and_unreadable_results_leave_the_rest(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    md = result_markdown(_result({"tune": {"model": str(tmp_path / "none")},
                                  "evaluate": {"results": str(tmp_path / "bad.json")}}))
    assert "model card" not in md and "## Evaluation" not in md and "| tune |" in md
