"""Option scoring: the log-likelihood of every answer continuing the evaluation prompt → class probabilities.

Why: the original reads one greedy answer and scores AUROC/AUC-PR from that hard label (reference
§4.5), so its AUROC is a balanced accuracy in disguise. The probability the model gives each
answer is what a ranking metric needs. For a sample, option *k* of a task is the token sequence
that follows the evaluation prompt in the *training* text of label *k* (``train_ids``): " Yes" /
" No", " Positive" …, or ``A`` ``)`` after the prompt that ends at " (". Deriving them from the
training ids guarantees they are the exact tokens the model was taught; the trailing " " + EOT
every answer shares is not scored (it says nothing about the class).

Scores are ``sum_j log p(option_j | EEG, prompt, option_<j)`` under the head restricted to the
50,257 text logits (the same domain as generation); ``softmax`` over the options gives the class
probabilities. All options of all samples of a batch run in one forward pass (rows repeated per
option, options right-padded: text is causal, padding after an option never changes its score).
"""

from __future__ import annotations

import torch

from neurolm.errors import ConfigError
from neurolm.instruct.generate import repeat_batch, text_logits_at
from neurolm.instruct.tasks import Task, eval_ids, train_ids
from neurolm.lm.config import EOT_ID


def answer_options(task: Task, tok) -> list[list[int]]:
    """Token ids of every option (index = label) after the evaluation prompt, taken from the training ids.

    ConfigError when an option is not the tokens its text gives on its own (the model would be
    scored on tokens it was not trained to produce), when the training text does not end in
    " " + EOT, or when two options coincide.
    """
    from neurolm.lm.text import encode_ordinary

    prompt = eval_ids(task, tok)
    tail = [*encode_ordinary(tok, " "), EOT_ID]
    opts: list[list[int]] = []
    for label in range(task.n_classes):
        ids, _ = train_ids(task, label, tok)  # ConfigError when the answer changes the prompt's tokens
        body = ids[len(prompt):]
        if len(body) <= len(tail) or body[-len(tail):] != tail:
            raise ConfigError(f"task {task.name}: the training text of {task.answers[label]!r} does not end in "
                              "' ' + <|endoftext|> after its answer")
        opt = body[: -len(tail)]
        full = f"{task.question} {task.answers[label]}"
        text = full[len(task.eval_text()):]
        if not full.startswith(task.eval_text()) or encode_ordinary(tok, text) != opt or tok.decode(opt) != text:
            raise ConfigError(f"task {task.name}: option {text!r} tokenizes as {encode_ordinary(tok, text)} on its "
                              f"own but as {opt} in training: scores would not be of the trained tokens")
        opts.append(opt)
    if len({tuple(o) for o in opts}) != len(opts):
        raise ConfigError(f"task {task.name}: two answer options have the same tokens")
    return opts


def option_batch(prompt: list[int], options: list[list[int]], pad: int = EOT_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [K, P + Lmax] = prompt + option k right-padded, target mask [K, Lmax] of real option tokens)."""
    width = max(len(o) for o in options)
    ids = torch.full((len(options), len(prompt) + width), pad, dtype=torch.long)
    real = torch.zeros((len(options), width), dtype=torch.bool)
    for k, o in enumerate(options):
        ids[k, : len(prompt)] = torch.tensor(prompt)
        ids[k, len(prompt): len(prompt) + len(o)] = torch.tensor(o)
        real[k, : len(o)] = True
    return ids, real


@torch.no_grad()
def score_options(model, batch: dict[str, torch.Tensor], prompt: list[int],
                  options: list[list[int]], positions: str = "own") -> torch.Tensor:
    """Log-likelihood [B, K] of each option after each row's EEG and ``prompt`` (one forward pass)."""
    b, k = batch["time"].shape[0], len(options)
    dev = batch["time"].device
    ids, real = option_batch(prompt, options)
    ids, real = ids.to(dev), real.to(dev)
    width = real.shape[1]
    p = len(prompt)
    where = torch.arange(p - 1, p - 1 + width, device=dev)  # position j predicts option token j
    logits = text_logits_at(model, repeat_batch(batch, k), ids.repeat(b, 1), where, positions=positions).float()
    logp = torch.log_softmax(logits, dim=-1)  # [B*K, width, V]
    target = ids[:, p:].repeat(b, 1)
    tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * real.repeat(b, 1)
    return tok_lp.sum(dim=1).view(b, k)


def option_probabilities(loglik: torch.Tensor) -> torch.Tensor:
    """Class probabilities [B, K]: softmax of the option log-likelihoods."""
    return torch.softmax(loglik.double(), dim=-1)
