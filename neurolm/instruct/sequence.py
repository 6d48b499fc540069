"""Instruction-tuning sequences of NeuroLM (reference §4.1-4.2), shared by tuning and evaluation.

A sequence is ``[EEG tokens, padded to eeg_len = 276] + [text, padded with 50256 to text_len = 80]``::

    text  = [SEP] + BPE(question + " " + answer + " ") + <|endoftext|>     (tasks.train_ids)

Pieces (all return torch tensors; the model is ``NeuroLM``):

``eeg_batch(samples, eeg_len)``
    corpus samples ``{codes, ch, time}`` → ``codes, ch, time, mask`` [B, eeg_len]. A sample longer
    than ``eeg_len`` is refused with its size (ConfigError), never truncated.
``pad_text(id_lists, text_len)``
    ragged token lists → ``[B, text_len]`` padded with 50256 (EOT), and their lengths.
``text_targets(ids, first, text_len)``
    the original's loss mask: target at text position i is ``ids[i + 1]`` for ``first - 1 ≤ i <
    len(ids) - 1`` (the answer, " " and EOT; for TUEV/HMC also " (" — ``first`` comes from
    ``tasks.train_ids``), −1 everywhere else. There is no EEG loss in this stage.
``build_batch(samples, keys, texts, ...)``
    a training batch: ``eeg_batch`` + ``text`` [B, 80] + ``text_targets`` [B, 80] + ``task`` [B]
    (index into ``TaskTexts.names``) + ``label`` [B].
``TaskTexts(tok)``
    the token ids of every (task, label) training text and every task's evaluation prompt, encoded
    once.

Attention and positions are the model's (``NeuroLM.eeg_text_hidden`` / ``forward_eeg_text``): EEG-EEG
stair mask, text attends causally to earlier text and every valid EEG token, padded EEG keys masked
for every row. Text position ids (:func:`text_positions`): ``"own"`` (default) = each row's own last
second + 1; ``"reference"`` = the batch's last second + 1 for every row, as the original (which makes
a sample's text positions depend on the other samples of its batch; docs/DEVIATIONS.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from neurolm.corpus.reader import collate_tokens
from neurolm.errors import ConfigError
from neurolm.instruct.tasks import EEG_MAX_LEN, TASKS, TEXT_MAX_LEN, Task, eval_ids, get_task, train_ids
from neurolm.lm.config import EOT_ID
from neurolm.lm.model import text_positions
from neurolm.lm.targets import IGNORE

__all__ = ["EEG_MAX_LEN", "TEXT_MAX_LEN", "POSITION_MODES", "TaskTexts", "build_batch", "eeg_batch", "pad_text",
           "text_positions", "text_targets"]

POSITION_MODES = ("own", "reference")


def eeg_batch(samples: Sequence[dict], eeg_len: int = EEG_MAX_LEN) -> dict[str, torch.Tensor]:
    """``codes``, ``ch``, ``time``, ``mask`` [B, eeg_len] of corpus samples; ConfigError for a longer one."""
    for s in samples:
        n = len(s["codes"])
        if n > eeg_len:
            raise ConfigError(f"an EEG window of {n} tokens is longer than the {eeg_len} an instruction sequence "
                              "holds (NeuroLM's eeg_max_len); refused, never truncated")
    b = collate_tokens([{k: s[k] for k in ("codes", "ch", "time")} for s in samples], max_len=eeg_len)
    del b["targets"]  # stage-2 next-code targets: no EEG loss here
    return b


def pad_text(id_lists: Sequence[Sequence[int]], text_len: int = TEXT_MAX_LEN,
             pad: int = EOT_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [B, text_len] padded with ``pad``, lengths [B]); ConfigError for a text longer than ``text_len``."""
    out = np.full((len(id_lists), text_len), pad, dtype=np.int64)
    lengths = np.zeros(len(id_lists), dtype=np.int64)
    for r, ids in enumerate(id_lists):
        if len(ids) > text_len:
            raise ConfigError(f"a text of {len(ids)} tokens is longer than text_len={text_len}")
        out[r, : len(ids)] = ids
        lengths[r] = len(ids)
    return torch.from_numpy(out), torch.from_numpy(lengths)


def text_targets(ids: Sequence[int], first: int, text_len: int = TEXT_MAX_LEN) -> torch.Tensor:
    """Targets [text_len]: ``ids[i + 1]`` where token ``i + 1`` is supervised (index ≥ ``first``), else −1."""
    if not 1 <= first < len(ids) <= text_len:
        raise ConfigError(f"supervised tokens from {first} of a {len(ids)}-token text do not fit text_len={text_len}")
    y = torch.full((text_len,), IGNORE, dtype=torch.long)
    y[first - 1: len(ids) - 1] = torch.as_tensor(list(ids[first:]), dtype=torch.long)
    return y


class TaskTexts:
    """Token ids of every task's training texts (per label) and evaluation prompt, encoded once with ``tok``."""

    def __init__(self, tok, tasks: Sequence[Task] | None = None) -> None:
        self.tasks: tuple[Task, ...] = tuple(tasks or TASKS.values())
        self.names: tuple[str, ...] = tuple(t.name for t in self.tasks)
        self.train: dict[tuple[str, int], tuple[list[int], int]] = {
            (t.name, k): train_ids(t, k, tok) for t in self.tasks for k in range(t.n_classes)}
        self.prompt: dict[str, list[int]] = {t.name: eval_ids(t, tok) for t in self.tasks}

    def index(self, task: str | Task) -> int:
        name = task.name if isinstance(task, Task) else get_task(task).name
        if name not in self.names:
            raise ConfigError(f"task {name!r} is not among {self.names}")
        return self.names.index(name)

    def training(self, task: str | Task, label: int) -> tuple[list[int], int]:
        """(ids of [SEP] ... EOT, index of the first supervised token) of ``task`` with ``label``."""
        t = task if isinstance(task, Task) else get_task(task)
        key = (t.name, int(label))
        if key not in self.train:
            t.train_text(int(label))  # ConfigError for a label outside the task's classes
            raise ConfigError(f"task {t.name!r} is not among {self.names}")
        return self.train[key]


def build_batch(samples: Sequence[dict], keys: Sequence[tuple[str, int]], texts: TaskTexts,
                eeg_len: int = EEG_MAX_LEN, text_len: int = TEXT_MAX_LEN) -> dict[str, torch.Tensor]:
    """A training batch of labeled samples: ``keys[i]`` = (task, label) of ``samples[i]`` (see module doc)."""
    if len(samples) != len(keys):
        raise ValueError(f"{len(samples)} samples for {len(keys)} (task, label) keys")
    b = eeg_batch(samples, eeg_len)
    pairs = [texts.training(t, k) for t, k in keys]
    b["text"], _ = pad_text([ids for ids, _ in pairs], text_len)
    b["text_targets"] = torch.stack([text_targets(ids, first, text_len) for ids, first in pairs])
    b["task"] = torch.tensor([texts.index(t) for t, _ in keys], dtype=torch.long)
    b["label"] = torch.tensor([int(k) for _, k in keys], dtype=torch.long)
    return b
