"""The stair mask against a literal re-implementation of the reference's construction (§3.4)."""

from __future__ import annotations

import pytest
import torch

from neurolm.lm.mask import causal_steps, stair_mask, stair_mask_float


def reference_mask(n_ch: int, n_sec: int, length: int) -> torch.Tensor:
    """tril(ones), then the C×C block of every second opened, then padded keys closed (loops, as written)."""
    m = torch.tril(torch.ones(length, length))
    for t in range(n_sec):
        for i in range(t * n_ch, (t + 1) * n_ch):
            for j in range(t * n_ch, (t + 1) * n_ch):
                m[i, j] = 1
    for i in range(length):
        for j in range(n_ch * n_sec, length):
            m[i, j] = 0
    return m.bool()


def neurolm_layout(n_ch: int, n_sec: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major indices as the corpus pads them: time 0 and valid False at padding."""
    time = torch.zeros(length, dtype=torch.long)
    time[: n_ch * n_sec] = torch.arange(n_sec).repeat_interleave(n_ch)
    valid = torch.zeros(length, dtype=torch.bool)
    valid[: n_ch * n_sec] = True
    return time, valid


@pytest.mark.parametrize("n_ch,n_sec,length", [(3, 4, 16), (5, 3, 15), (2, 7, 20), (4, 1, 9), (19, 3, 64)])
def test_matches_reference_on_valid_queries(n_ch, n_sec, length):
    time, valid = neurolm_layout(n_ch, n_sec, length)
    got = stair_mask(time[None], valid[None])
    assert got.shape == (1, 1, length, length) and got.dtype == torch.bool
    ref = reference_mask(n_ch, n_sec, length)
    nv = n_ch * n_sec
    assert torch.equal(got[0, 0, :nv], ref[:nv])


def test_padded_queries_see_only_themselves_and_no_row_is_empty():
    time, valid = neurolm_layout(3, 2, 10)
    got = stair_mask(time[None], valid[None])[0, 0]
    assert torch.equal(got[6:], torch.eye(10, dtype=torch.bool)[6:])
    assert bool(got.any(dim=1).all())
    assert not bool(got[:, 6:][:6].any())  # no valid query sees a pad key


def test_batch_rows_are_independent_and_irregular_layouts_follow_the_definition():
    g = torch.Generator().manual_seed(0)
    b, n = 3, 12
    time = torch.sort(torch.randint(0, 5, (b, n), generator=g), dim=1).values
    valid = torch.rand(b, n, generator=g) > 0.3
    got = stair_mask(time, valid)[:, 0]
    for r in range(b):
        for q in range(n):
            for k in range(n):
                want = (bool(valid[r, k]) and int(time[r, k]) <= int(time[r, q])) if valid[r, q] else q == k
                assert bool(got[r, q, k]) == want


def test_float_variant_is_additive_zero_or_finfo_min():
    time, valid = neurolm_layout(3, 3, 12)
    allowed = stair_mask(time[None], valid[None])
    for dtype in (torch.float32, torch.bfloat16):
        f = stair_mask_float(time[None], valid[None], dtype)
        assert f.dtype == dtype
        assert torch.equal(f == 0, allowed)
        assert bool((f[~allowed] == torch.finfo(dtype).min).all())
        assert torch.isfinite(f).all()


def test_causal_steps_give_plain_causal_attention():
    got = stair_mask(causal_steps(2, 7), torch.ones(2, 7, dtype=torch.bool))
    assert torch.equal(got[:, 0], torch.tril(torch.ones(7, 7, dtype=torch.bool)).expand(2, 7, 7))


def test_built_on_the_inputs_device():
    time, valid = neurolm_layout(2, 2, 6)
    got = stair_mask(time[None].to("meta"), valid[None].to("meta"))
    assert got.device.type == "meta"


def test_shape_errors():
    with pytest.raises(ValueError):
        stair_mask(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))
