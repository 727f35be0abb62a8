"""``device="auto"``: resolved when skorch reads it, kept as given for ``get_params``."""

import torch

__all__ = ["resolve_device"]


def resolve_device(device):
    """``'auto'`` becomes ``'cuda'`` when a GPU is visible, else ``'cpu'``.

    Parameters
    ----------
    device : str, torch.device, int or None
        A device as skorch takes it, or ``"auto"``.

    Returns
    -------
    device : str, torch.device, int or None
        ``device``, with ``"auto"`` resolved.
    """
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class _AutoDeviceMixin:
    """The ``device`` parameter of :class:`~skal_cxr.MCDropoutCNN`, ``"auto"`` included."""

    # -- device="auto": skorch reads ``self.device`` everywhere; resolve on read
    # and keep the value the user gave for get_params / clone.
    @property
    def device(self):
        return resolve_device(self.__dict__.get("_device_param", "cpu"))

    @device.setter
    def device(self, value):
        self.__dict__["_device_param"] = value

    def __getstate__(self):
        state = super().__getstate__()
        state["device"] = self.device  # skorch maps CUDA tensors with it on load
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.pop("device", None)  # the property reads _device_param

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__.get("_device_param", "cpu")
        params.pop("_device_param", None)
        return params

    def _on_cuda(self):
        return torch.device(self.device).type == "cuda"
