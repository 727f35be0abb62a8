"""Monte Carlo Dropout machinery: dropout-only train mode and the trunk/head split.

MC Dropout draws a new dropout mask at every forward pass while every other
layer behaves as at test time (BatchNorm uses its running statistics). Layers
before the first dropout layer are deterministic, so their output can be
computed once per image and shared by all Monte Carlo samples; only the
*stochastic head* from the first dropout layer onwards has to be sampled.
"""

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

__all__ = ["is_dropout", "has_dropout", "mc_dropout_mode", "split_mc", "sample_head"]

# At most this many float elements are fed to the head in one call (64 MiB of
# float32): bounds memory independently of n_mc_samples and batch size.
MAX_HEAD_ELEMENTS = 1 << 24


def is_dropout(module):
    """Whether ``module`` is a dropout layer (any ``torch.nn`` dropout variant)."""
    return isinstance(module, _DropoutNd)


def has_dropout(module):
    """Whether ``module`` is or contains a dropout layer."""
    return any(is_dropout(m) for m in module.modules())


@contextmanager
def mc_dropout_mode(module):
    """Put dropout layers in train mode and everything else in eval mode.

    Unlike ``module.train()`` this leaves BatchNorm (and any other layer whose
    behaviour depends on the mode) in evaluation mode. The previous mode of
    every submodule is restored on exit.
    """
    previous = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        for m in module.modules():
            if is_dropout(m):
                m.train()
        yield module
    finally:
        for m, training in previous:
            m.training = training


def split_mc(module):
    """Split ``module`` into a deterministic trunk and a stochastic head.

    Parameters
    ----------
    module : torch.nn.Module
        A module with an ``mc_split()`` method returning ``(trunk, head)``
        (as :class:`skal_cxr.networks.CXRNet` has), or an ``nn.Sequential``,
        which is split before its first child that contains dropout.

    Returns
    -------
    split : tuple of (nn.Module, nn.Module) or None
        ``head(trunk(x))`` equals ``module(x)``. ``None`` when the module
        cannot be split (then callers fall back to full forward passes).
    """
    if hasattr(module, "mc_split"):
        return module.mc_split()
    if isinstance(module, nn.Sequential):
        children = list(module)
        for i, child in enumerate(children):
            if has_dropout(child):
                if i == 0:
                    return None
                # plain Sequentials: slicing a subclass would call its own __init__
                return nn.Sequential(*children[:i]), nn.Sequential(*children[i:])
        return module, nn.Sequential()
    return None


def sample_head(head, z, n_mc_samples, nonlinearity):
    """Run the stochastic head ``n_mc_samples`` times on trunk output ``z``.

    All samples go through the head in as few vectorised calls as memory
    allows: ``z`` of shape ``(B, ...)`` is repeated to ``(n_mc_samples * B, ...)``
    so that each row draws its own dropout mask, exactly as ``n_mc_samples``
    separate forward passes would.

    Returns
    -------
    probas : torch.Tensor of shape (n_mc_samples, B, n_classes)
    """
    batch = z.shape[0]
    per_sample = max(1, z.numel())
    chunk = max(1, min(n_mc_samples, MAX_HEAD_ELEMENTS // per_sample))
    out = []
    for start in range(0, n_mc_samples, chunk):
        t = min(chunk, n_mc_samples - start)
        zz = z.unsqueeze(0).expand(t, *z.shape).reshape(t * batch, *z.shape[1:])
        probas = nonlinearity(head(zz))
        out.append(probas.reshape(t, batch, -1))
    return torch.cat(out, dim=0)
