"""A tiny BiRefNet with seeded random weights, shared by the tests of this folder."""

from __future__ import annotations

import pytest
import torch

from genesis3d.models.birefnet import BiRefNet, BiRefNetConfig


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Seeded random weights and BatchNorm statistics, offsets large enough to matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.dim() >= 2:
                scale = (2.0 if "offset_conv" in name else 1.0) / tensor[0].numel() ** 0.5
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)
            else:
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))


@pytest.fixture(scope="session")
def tiny_config() -> BiRefNetConfig:
    return BiRefNetConfig.tiny()


@pytest.fixture(scope="session")
def tiny_model(tiny_config) -> BiRefNet:
    model = BiRefNet(tiny_config).eval()
    randomize(model, seed=0)
    return model


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: thread hand-offs cost more than they save, and on a busy machine far more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
