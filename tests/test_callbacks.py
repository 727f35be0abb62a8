import numpy as np
import torch

from skal_cxr import MCDropoutCNN


def _first_bn_inputs(net, X):
    """Inputs of the first BatchNorm over X, flattened to (n_values, channels)."""
    captured = []
    conv = net.module_.features[0][0]
    hook = conv.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    net.module_.eval()
    with torch.no_grad():
        net.module_(torch.from_numpy(X[:, None]))
    hook.remove()
    out = captured[0]
    return out.transpose(0, 1).reshape(out.shape[1], -1)


def test_running_stats_are_the_training_set_average(toy_images):
    X, y = toy_images
    net = MCDropoutCNN(max_epochs=2, batch_size=20, random_state=0, min_train_steps=0).fit(X, y)
    bn = net.module_.features[0][1]
    values = _first_bn_inputs(net, X)
    # batches of 20 divide 60: the average of batch means is the overall mean
    torch.testing.assert_close(bn.running_mean, values.mean(dim=1), rtol=1e-4, atol=1e-5)
    # running_var: the average of the three batches' unbiased variances
    per_batch = values.reshape(len(values), 3, -1)  # images are in order, 20 a batch
    expected_var = per_batch.var(dim=2, unbiased=True).mean(dim=1)
    torch.testing.assert_close(bn.running_var, expected_var, rtol=1e-3, atol=1e-5)
    assert bn.momentum == 0.1  # update_bn restores the momentum


def test_recalibration_can_be_turned_off(toy_images):
    X, y = toy_images
    on = MCDropoutCNN(max_epochs=1, random_state=0, min_train_steps=0).fit(X, y)
    off = MCDropoutCNN(
        max_epochs=1, random_state=0, min_train_steps=0, callbacks__bn_recalibration=None
    ).fit(X, y)
    bn_on, bn_off = on.module_.features[0][1], off.module_.features[0][1]
    assert not torch.equal(bn_on.running_mean, bn_off.running_mean)
    # the weights are the same: only the statistics were recomputed
    assert torch.equal(on.module_.head[1].weight, off.module_.head[1].weight)
    assert not np.array_equal(on.predict_proba(X), off.predict_proba(X))
