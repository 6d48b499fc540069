"""NeuroLM stage 2: multi-channel autoregression on GPT-2 (reference §3, §9.1).

Usage::

    from neurolm.lm import NeuroLM, lm_preset, load_lm, save_lm
    cfg = lm_preset("tiny")                       # "B", "L", "XL": GPT-2 sizes; input_mode="features"
    model = NeuroLM(cfg); model.set_codebook(cb)  # codes mode: the tokenizer's codebook [K, code_dim]
    out = model(eeg_batch, (text_x, text_y))      # loss = loss_eeg + loss_text, one call (DDP-friendly)
    logits = model.forward_eeg(batch)             # [B, L, 50304 + K]; code k is logit 50304 + k
    save_lm(model, "out/model")                   # GPT2Model.from_pretrained("out/model") loads the backbone
    model, report, codebook = import_published("NeuroLM-B.pt", vq_path="VQ.pt")

Modules: ``mask`` (the stair 4-D mask, bool for SDPA / additive for eager), ``config``
(``LMConfig``, ``LMTrainConfig``, presets, YAML), ``model`` (``NeuroLM`` on transformers'
``GPT2Model``, parameter counts on the meta device), ``targets`` (next-second code targets,
loss), ``io`` (model directories), ``weights`` (the original's nanoGPT-layout checkpoints,
starting from pretrained GPT-2), ``text`` (GPT-2 BPE offline, uint16 token files),
``data`` (corpus batches and checks), ``train`` (optimiser, schedule, step, validation),
``synthetic`` (random batches for tests and benchmarks).
"""

from neurolm.lm.config import LMConfig, LMTrainConfig, lm_preset, lm_train_preset, load_lm_configs
from neurolm.lm.io import load_lm, save_lm
from neurolm.lm.mask import stair_mask, stair_mask_float
from neurolm.lm.model import NeuroLM, count_parameters
from neurolm.lm.targets import next_second_codes
from neurolm.lm.weights import import_published, init_from_gpt2

__all__ = ["LMConfig", "LMTrainConfig", "NeuroLM", "count_parameters", "import_published", "init_from_gpt2",
           "lm_preset", "lm_train_preset", "load_lm", "load_lm_configs", "next_second_codes", "save_lm",
           "stair_mask", "stair_mask_float"]
