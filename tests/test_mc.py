import pytest
import torch
from torch import nn

from skal_cxr import _mc
from skal_cxr._mc import has_dropout, mc_dropout_mode, sample_head, split_mc


def test_split_sequential_before_first_dropout_block():
    block = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    seq = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), block, nn.Linear(4, 2))
    trunk, head = split_mc(seq)
    assert len(trunk) == 2 and not has_dropout(trunk)
    assert head[0] is block and head[1] is seq[3]
    x = torch.randn(5, 3)
    seq.eval()
    assert torch.allclose(head(trunk(x)), seq(x))


def test_split_cases_without_benefit():
    assert split_mc(nn.Sequential(nn.Dropout(), nn.Linear(2, 2))) is None
    assert split_mc(nn.Linear(2, 2)) is None
    trunk, head = split_mc(nn.Sequential(nn.Linear(2, 2)))
    assert len(head) == 0


def test_mc_dropout_mode_restores_modes():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(), nn.AlphaDropout())
    net.train()
    net[1].eval()
    with mc_dropout_mode(net):
        assert [m.training for m in net] == [False, False, True, True]
    assert [m.training for m in net] == [True, False, True, True]


def test_sample_head_chunks_bound_memory(monkeypatch):
    monkeypatch.setattr(_mc, "MAX_HEAD_ELEMENTS", 40)  # 3 samples of 2 x 6 per call
    calls = []
    head = nn.Linear(6, 3)
    head.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    z = torch.randn(2, 6)
    out = sample_head(head, z, 7, lambda t: t)
    assert out.shape == (7, 2, 3)
    assert calls == [6, 6, 2]
    assert torch.allclose(out, head(z).expand(7, 2, 3))


@pytest.mark.parametrize("n_samples", [1, 5])
def test_each_sample_row_gets_its_own_mask(n_samples):
    torch.manual_seed(0)
    head = nn.Dropout(0.5).train()
    out = sample_head(head, torch.ones(4, 1000), n_samples, lambda t: t)
    if n_samples > 1:
        assert not torch.equal(out[0], out[1])
    assert abs(out.mean().item() - 1.0) < 0.05
