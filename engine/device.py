"""Where tensors run: ``auto`` picks CUDA when there is a GPU.

Its own small module so that the data layer (image components) and the models can both ask
without the data layer importing the models package.
"""

from __future__ import annotations

import torch

from engine.errors import ParameterError


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' requested but no CUDA GPU is available (use cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise ParameterError(f"unknown device {device!r} (valid: auto, cpu, cuda)")
    return torch.device(device)
