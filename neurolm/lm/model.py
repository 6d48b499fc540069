"""NeuroLM stage 2 on transformers' GPT-2: EEG as a foreign language (reference §3.1-3.4, §9.1).

Layout::

    gpt       transformers GPT2Model: wte [50304, d] (text; [SEP] = 50257), wpe (indexed by the
              second for EEG), blocks, ln_f. Exact GELU, no dropout, untied from the head.
    lm_head   Linear(d, 50304 + codebook) without bias; EEG code k is logit 50304 + k.
    chan_embed  Embedding(256, d) added to every EEG input (the original's ``pos_embed``).
    codes mode:    codebook [K, code_dim] (frozen buffer) → code_proj Linear(code_dim, d)
    features mode: tokenizer (frozen VQ encoder) → encode_transform_layer (Identity when d = 768,
                   Linear + GELU otherwise)

Position ids: the second for EEG tokens (all channels of a second share one), 0..L-1 for text
alone, and last second + 1 onwards for text after EEG. Whenever EEG is in the sequence the
attention mask is the 4-D stair mask of :mod:`.mask` built from those position ids (text after
EEG is then causal); passing it is also what keeps transformers from reading repeated position
ids as packed sequences (STACK_FACTS.md). Text alone uses transformers' plain causal path.
"""

from __future__ import annotations

import torch
from torch import nn

from neurolm.errors import ConfigError
from neurolm.lm.config import LMConfig
from neurolm.lm.mask import additive_mask, stair_mask
from neurolm.lm.targets import IGNORE, code_logit_targets, lm_loss
from neurolm.tokenizer.model import NeuralTransformer


def build_backbone(cfg: LMConfig):
    from transformers import GPT2Model

    return GPT2Model(cfg.gpt2_config())


class NeuroLM(nn.Module):
    def __init__(self, cfg: LMConfig, chan_init_std: float | None = None):
        super().__init__()
        self.config = cfg
        d = cfg.n_embd
        self.gpt = build_backbone(cfg)
        self.lm_head = nn.Linear(d, cfg.n_logits, bias=False)
        nn.init.normal_(self.lm_head.weight, std=0.02)
        self.chan_embed = nn.Embedding(cfg.chan_rows, d)  # N(0, 1) as the original's pos_embed
        if chan_init_std is not None:
            nn.init.normal_(self.chan_embed.weight, std=chan_init_std)
        tok = cfg.tokenizer
        if cfg.input_mode == "codes":
            self.register_buffer("codebook", torch.zeros(tok.codebook_size, tok.code_dim))
            self.code_proj = nn.Linear(tok.code_dim, d)
            # PyTorch's default init on unit-norm codebook rows gives inputs of std ~0.05, the scale of
            # GPT-2's token embeddings (a unit-variance init, the scale of features mode, made a tiny
            # model overfit a batch markedly slower)
        else:
            self.tokenizer = NeuralTransformer(tok, tok.n_enc_layers, in_chans=1, attention=tok.encoder_attention)
            self.tokenizer.requires_grad_(False)
            self.encode_transform_layer = (nn.Identity() if tok.d_model == d
                                           else nn.Sequential(nn.Linear(tok.d_model, d), nn.GELU()))

    # -- parameters --------------------------------------------------------------------------
    def set_codebook(self, codebook: torch.Tensor) -> None:
        """Install the tokenizer's codebook [K, code_dim] (codes mode)."""
        if self.config.input_mode != "codes":
            raise ConfigError("set_codebook is for input_mode='codes'")
        if tuple(codebook.shape) != tuple(self.codebook.shape):
            raise ConfigError(f"codebook must be {tuple(self.codebook.shape)}, got {tuple(codebook.shape)}")
        with torch.no_grad():
            self.codebook.copy_(codebook)

    def train(self, mode: bool = True) -> "NeuroLM":
        super().train(mode)
        if self.config.input_mode == "features":
            self.tokenizer.eval()  # frozen, always in inference mode
        return self

    # -- inputs ------------------------------------------------------------------------------
    def eeg_embeds(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """EEG inputs [B, L, d]: projected codebook vectors or encoder features, plus the channel embedding.

        ``batch``: ``ch``, ``time`` [B, L] long, ``mask`` [B, L] bool, and ``codes`` [B, L]
        (codes mode; −1/anything at padding) or ``x`` [B, L, 200] (features mode; or
        ``features`` [B, L, d_enc], the encoder's output computed elsewhere).
        """
        ch, valid = batch["ch"].long(), batch["mask"].bool()
        if self.config.input_mode == "codes":
            codes = batch["codes"].long().clamp(0, self.codebook.shape[0] - 1)
            h = self.code_proj(self.codebook[codes])
        else:
            feats = batch.get("features")  # precomputed encoder features [B, L, d_enc], if given
            if feats is None:
                with torch.no_grad():
                    feats = self.tokenizer(batch["x"].float(), ch, batch["time"].long(), valid)
            h = self.encode_transform_layer(feats)
        return h + self.chan_embed(ch)

    # -- forward -----------------------------------------------------------------------------
    def forward(self, eeg: dict[str, torch.Tensor] | None = None,
                text: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """One call for a training step (so DDP sees one forward per backward, as the original).

        ``eeg``: an EEG batch with ``targets`` (codes, −1 ignored); ``text``: (inputs, targets)
        [B, L]. → ``loss`` = ``loss_eeg`` + ``loss_text`` (equal weights), and for EEG the head's
        logits ``logits_eeg`` [N, n_logits] and output indices ``targets_eeg`` [N] of the N tokens
        that have a target: the 58k-wide head runs only where a loss is taken (not on padding or
        on the last second), which is the same loss as the original's with less memory.
        """
        out: dict[str, torch.Tensor] = {}
        if eeg is not None:
            h = self.hidden(self.eeg_embeds(eeg), eeg["time"].long(), eeg["mask"].bool())
            y = code_logit_targets(eeg["targets"].long(), self.config.text_vocab)
            sel = y != IGNORE
            logits = self.lm_head(h[sel])
            out.update(logits_eeg=logits, targets_eeg=y[sel], loss_eeg=lm_loss(logits, y[sel]))
        if text is not None:
            out["loss_text"] = lm_loss(self.forward_text(text[0]), text[1])
        losses = [out[k] for k in ("loss_eeg", "loss_text") if k in out]
        if not losses:
            raise ValueError("forward needs an EEG batch, a text batch or both")
        out["loss"] = losses[0] if len(losses) == 1 else losses[0] + losses[1]
        return out

    def hidden(self, embeds: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Backbone over input embeddings with the stair mask from ``positions``; → [B, L, d]."""
        if positions.numel() and int(positions.max()) >= self.config.block_size:
            raise ConfigError(f"position {int(positions.max())} exceeds the position table "
                              f"({self.config.block_size} rows)")
        allowed = stair_mask(positions, valid)
        if self.config.attn_implementation == "eager":
            allowed = additive_mask(allowed, embeds.dtype)
        out = self.gpt(inputs_embeds=embeds, position_ids=positions, attention_mask=allowed, use_cache=False)
        return out.last_hidden_state

    def forward_eeg(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits [B, L, n_logits] of an EEG batch (positions = seconds, stair mask)."""
        t = batch["time"].long()
        return self.lm_head(self.hidden(self.eeg_embeds(batch), t, batch["mask"].bool()))

    def forward_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of a text batch [B, L] (positions 0..L-1, causal)."""
        b, n = ids.shape
        if n > self.config.block_size:
            raise ConfigError(f"text of {n} tokens exceeds the position table ({self.config.block_size} rows)")
        pos = torch.arange(n, device=ids.device).expand(b, n)
        # no 4-D mask: transformers' own causal path (SDPA is_causal, flash kernels on GPU); with
        # consecutive position ids it cannot mistake the batch for packed sequences
        out = self.gpt(inputs_embeds=self.gpt.wte(ids), position_ids=pos, use_cache=False)
        return self.lm_head(out.last_hidden_state)

    def forward_eeg_text(self, batch: dict[str, torch.Tensor], ids: torch.Tensor,
                         positions: str | torch.Tensor = "own") -> torch.Tensor:
        """Logits of EEG followed by text: text positions continue at each row's last valid second + 1.

        ``positions``: ``"own"`` (that default), ``"reference"`` (the batch's last second + 1 for every
        row, as the original) or explicit text position ids [B, L_text] (see :func:`text_positions`).
        """
        return self.lm_head(self.eeg_text_hidden(batch, ids, positions))

    def eeg_text_hidden(self, batch: dict[str, torch.Tensor], ids: torch.Tensor,
                        positions: str | torch.Tensor = "own") -> torch.Tensor:
        """Backbone output [B, L_eeg + L_text, d] of EEG followed by text (every text token is valid:
        text attends causally to earlier text and to every valid EEG token, padded EEG keys are masked)."""
        t, valid = batch["time"].long(), batch["mask"].bool()
        pos_text = positions if isinstance(positions, torch.Tensor) else text_positions(t, valid, ids.shape[1],
                                                                                       positions)
        embeds = torch.cat([self.eeg_embeds(batch), self.gpt.wte(ids)], dim=1)
        pos = torch.cat([t, pos_text.to(t.device).long()], dim=1)
        mask = torch.cat([valid, torch.ones_like(ids, dtype=torch.bool)], dim=1)
        return self.hidden(embeds, pos, mask)


def text_positions(time: torch.Tensor, valid: torch.Tensor, n_text: int, mode: str = "own") -> torch.Tensor:
    """Position ids [B, n_text] of text after EEG: from each row's last valid second + 1 (``"own"``) or
    from the batch's last second + 1 for every row (``"reference"``, the original's); a row without
    valid EEG starts at 0 (own)."""
    last = torch.where(valid.bool(), time.long(), torch.full_like(time, -1, dtype=torch.long))
    last = last.max(dim=1, keepdim=True).values
    if mode == "reference":
        last = last.max().expand_as(last)
    elif mode != "own":
        raise ConfigError(f"text positions mode must be 'own' or 'reference', not {mode!r}")
    return last + 1 + torch.arange(n_text, device=time.device)[None]


def count_parameters(cfg: LMConfig, exclude_positions: bool = True, encoder: bool = True) -> int:
    """Parameters of ``cfg`` counted on the meta device (nothing allocated).

    Defaults follow the reference's counts (nanoGPT's ``get_num_params``): without GPT-2's
    position table, with the frozen tokenizer encoder of ``features`` mode.
    """
    with torch.device("meta"):
        model = NeuroLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    if exclude_positions:
        n -= model.gpt.wpe.weight.numel()
    if not encoder and cfg.input_mode == "features":
        n -= sum(p.numel() for p in model.tokenizer.parameters())
    return n


def trainable_parameters(model: NeuroLM) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
