"""The six instruction-tuning tasks of NeuroLM: exact prompts, answers, parsing (reference §4.3-4.5).

Every string here is the original's. A training sequence's text part is::

    [SEP] + BPE(question + " " + answer + " ") + <|endoftext|>

(the original's ``question + answer + " " + <|endoftext|>`` with the answer written " Yes", " (A)").
At evaluation the prompt is ``[SEP] + BPE(question + eval_suffix)``: it ends at ``Answer:`` for
the Yes/No and emotion tasks and at ``Answer: (`` for the lettered ones.

Which tokens are supervised (reference §4.2): the original sets ``p`` = length of the evaluation
prompt (TUAB, SEED, Workload, TUSL) or that length − 1 (TUEV, HMC, so their " (" token is a target
as well) and takes the loss on every text token from ``p`` to the end (answer, " ", EOT).
``supervise_offset`` holds that −1/0 so the rule stays the original's by default.

Parsing (reference §4.5): decode the generated sequence without [SEP], ``split(" ")[result_idx]``,
keep the first 3 characters when it starts with "(", look it up among the answers; anything else
is *unparsable* (the original silently scores it as the last class; we count it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from neurolm.errors import ConfigError
from neurolm.lm.config import EOT_ID, SEP_ID

_TUEV_OPTIONS = ("spike and slow wave", "generalized periodic epileptiform discharge",
                 "periodic lateralized epileptiform discharge", "eye movement", "artifact", "background")
_HMC_OPTIONS = ("Wake", "NREM-1", "NREM-2", "NREM-3", "REM")
_TUSL_OPTIONS = ("background", "seizure", "slowing")
_LETTERS = "ABCDEF"


def _options_text(options: tuple[str, ...]) -> str:
    return " ".join(f"({_LETTERS[i]}) {o}." for i, o in enumerate(options))


def _lettered(n: int) -> tuple[str, ...]:
    return tuple(f"({_LETTERS[i]})" for i in range(n))


@dataclass(frozen=True)
class Task:
    """One downstream task: its dataset, prompt, answers (indexed by label) and parse rule."""

    name: str  # our key, lower case: "tuab"
    dataset: str  # the dataset adapter (``neurolm ingest-dataset NAME``)
    label_task: str  # the ``task`` column of the LABELS table ("TUAB")
    question: str  # up to and including "Answer:"
    answers: tuple[str, ...]  # answer text of label k (without the leading space)
    class_names: tuple[str, ...]  # what label k means, for tables and `ask`
    eval_suffix: str  # appended to the question at evaluation: "" or " ("
    result_idx: int  # index of the answer in ``decoded.split(" ")`` (the original's parse rule)
    supervise_offset: int  # the original's p = len(eval prompt) + this (−1: " (" is a target too)
    kind: Literal["binary", "multiclass"]

    @property
    def n_classes(self) -> int:
        return len(self.answers)

    def train_text(self, label: int) -> str:
        """The text after [SEP] of a training sequence, without the final EOT."""
        return f"{self.question} {self.answers[self._check(label)]} "

    def eval_text(self) -> str:
        """The prompt text after [SEP] at evaluation (generation continues from here)."""
        return self.question + self.eval_suffix

    def parse(self, decoded: str) -> int | None:
        """The class the original's rule reads from a decoded sequence (prompt + generation), or None."""
        words = decoded.split(" ")
        if len(words) <= self.result_idx:
            return None
        word = words[self.result_idx]
        if word.startswith("("):
            word = word[:3]
        return self.answers.index(word) if word in self.answers else None

    def _check(self, label: int) -> int:
        if not 0 <= int(label) < self.n_classes:
            raise ConfigError(f"task {self.name}: label {label} outside 0..{self.n_classes - 1}")
        return int(label)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("tuab", "tuab", "TUAB", "Question: Is this EEG segment abnormal? Answer:", ("No", "Yes"),
         ("normal", "abnormal"), "", 7, 0, "binary"),
    Task("tuev", "tuev", "TUEV", "Question: Which event type does this EEG segment belong to? Options: "
         + _options_text(_TUEV_OPTIONS) + " Answer:", _lettered(6),
         ("spsw", "gped", "pled", "eyem", "artf", "bckg"), " (", 34, -1, "multiclass"),
    Task("seed", "seed", "SEED", "Question: Which emotion type does this EEG segment belong to? Answer:",
         ("Positive", "Neutral", "Negative"), ("positive", "neutral", "negative"), "", 11, 0, "multiclass"),
    Task("hmc", "hmc", "HMC", "Question: Which sleep type does this EEG segment belong to? Options: "
         + _options_text(_HMC_OPTIONS) + " Answer:", _lettered(5), ("W", "N1", "N2", "N3", "R"), " (", 22, -1,
         "multiclass"),
    Task("workload", "workload", "Workload", "Question: Is this EEG segment of high workload? Answer:",
         ("No", "Yes"), ("rest", "arithmetic"), "", 9, 0, "binary"),
    Task("tusl", "tusl", "TUSL", "Question: Which type does this EEG segment belong to? Options: "
         + _options_text(_TUSL_OPTIONS) + " Answer:", _lettered(3), ("bckg", "seiz", "slow"), " (", 17, 0,
         "multiclass"),
)}

#: NeuroLM's padded lengths (reference §4.1): EEG tokens ≤ 276 (= 23 × 12), text ≤ 80.
EEG_MAX_LEN = 276
TEXT_MAX_LEN = 80


def get_task(name: str) -> Task:
    """The task called ``name`` (our key or the LABELS ``task`` value, any case)."""
    key = name.lower()
    for t in TASKS.values():
        if key in (t.name, t.label_task.lower()):
            return t
    raise ConfigError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")


def train_ids(task: Task, label: int, tok) -> tuple[list[int], int]:
    """Token ids of a training text ([SEP] ... EOT) and the index of its first supervised token."""
    from neurolm.lm.text import encode_ordinary

    ids = [SEP_ID, *encode_ordinary(tok, task.train_text(label)), EOT_ID]
    prompt = eval_ids(task, tok)
    if ids[: len(prompt)] != prompt:
        raise ConfigError(f"task {task.name}: the answer {task.answers[label]!r} changes the tokens of the "
                          "prompt it follows, so generation from the prompt could not produce it")
    return ids, len(prompt) + task.supervise_offset


def eval_ids(task: Task, tok) -> list[int]:
    """Token ids of the evaluation prompt ([SEP] + question + eval suffix)."""
    from neurolm.lm.text import encode_ordinary

    return [SEP_ID, *encode_ordinary(tok, task.eval_text())]
