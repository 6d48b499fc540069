"""The six tasks' prompts, answers and parse rule against GPT-2's BPE (reference §4.3-4.5)."""

import pytest

from neurolm.errors import ConfigError
from neurolm.instruct.tasks import TASKS, eval_ids, get_task, train_ids
from neurolm.lm.config import EOT_ID, SEP_ID
from neurolm.lm.text import load_gpt2_bpe


@pytest.fixture(scope="module")
def tok():
    return load_gpt2_bpe("auto")


# the answer pieces the original supervises, typed from reference §4.2 (TUEV/HMC also " (")
SUPERVISED = {
    "tuab": [" Yes", " ", "<|endoftext|>"],
    "tuev": [" (", "F", ")", " ", "<|endoftext|>"],
    "seed": [" Negative", " ", "<|endoftext|>"],
    "hmc": [" (", "E", ")", " ", "<|endoftext|>"],
    "workload": [" Yes", " ", "<|endoftext|>"],
    "tusl": ["C", ")", " ", "<|endoftext|>"],
}


@pytest.mark.parametrize("name", list(TASKS))
def test_supervised_tokens_are_the_originals(tok, name):
    task = TASKS[name]
    ids, first = train_ids(task, task.n_classes - 1, tok)
    assert ids[0] == SEP_ID and ids[-1] == EOT_ID
    assert [tok.decode([i]) for i in ids[first:]] == SUPERVISED[name]


@pytest.mark.parametrize("name", list(TASKS))
def test_parse_rule_reads_every_answer_back(tok, name):
    task = TASKS[name]
    for label in range(task.n_classes):
        ids, _ = train_ids(task, label, tok)
        assert task.parse(tok.decode(ids[1:-1])) == label
    prompt = tok.decode(eval_ids(task, tok)[1:])
    assert task.parse(prompt + " maybe") is None
    assert task.parse(prompt) is None


def test_lookup_and_bad_labels(tok):
    assert get_task("Workload") is TASKS["workload"] and get_task("HMC") is TASKS["hmc"]
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("mnist")
    with pytest.raises(ConfigError, match="outside"):
        TASKS["tuab"].train_text(2)
