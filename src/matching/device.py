"""The torch device a setting names: `auto` is a GPU when torch sees one."""

from __future__ import annotations

from matching.errors import ConfigError


def resolve_device(device: str) -> str:
    """`auto` means a GPU when torch sees one."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("params.yaml: a device is cuda, but torch sees no GPU here; set it to auto or cpu")
    return device
