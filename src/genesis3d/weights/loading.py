"""Safetensors checkpoints: read, summarise, and load into a module strictly.

Strict means: every parameter and buffer of the module must come from the checkpoint, and
every tensor of the checkpoint must land in the module, with the same shape. Only keys the
official loader itself skips may be named in ``skip_keys``. A mismatch raises one
:class:`~genesis3d.errors.WeightsError` that lists every problem, so a wrong or incomplete
checkpoint is diagnosed in one go.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis3d.errors import WeightsError

#: Largest safetensors JSON header accepted (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100_000_000
_LISTED = 12  # keys shown per category in an error message


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint, read from the header alone."""

    dtype: str
    shape: tuple[int, ...]
    #: (start, end) byte offsets of the data, counted from the end of the header.
    offsets: tuple[int, int] = field(default=(0, 0), compare=False)

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


def read_header(path: str | Path) -> dict[str, TensorInfo]:
    """The tensors of a safetensors file, from its header (no tensor data is read).

    Args:
        path: a ``.safetensors`` file.

    Returns:
        Key -> :class:`TensorInfo`, in file order.

    Raises:
        WeightsError: a missing file, or one that is not a valid safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}; check the weights folder")
    size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path} is not a safetensors file (only {size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise WeightsError(
                f"{path} is not a safetensors file, or it is truncated (header length {length}, file size {size})"
            )
        try:
            header = json.loads(stream.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WeightsError(
                f"{path} is not a safetensors file: its header is not JSON ({error})"
            ) from error
    tensors: dict[str, TensorInfo] = {}
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            start, stop = (int(v) for v in entry["data_offsets"])
            tensors[key] = TensorInfo(
                str(entry["dtype"]), tuple(int(s) for s in entry["shape"]), (start, stop)
            )
            end = max(end, stop)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise WeightsError(f"{path} has a malformed header entry for {key!r}") from error
    if 8 + length + end > size:
        raise WeightsError(
            f"{path} is truncated: its header needs {8 + length + end} bytes, the file has {size}; download it again"
        )
    return tensors


_TORCH_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _data_start(path: Path) -> int:
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
    return 8 + length


def load_safetensors(
    path: str | Path, *, dtype: Any = None, device: Any = "cpu", keys: Iterable[str] | None = None
) -> dict[str, Any]:
    """Read tensors from a safetensors file, one at a time.

    The file is read with plain reads, not memory-mapped, and each tensor is cast and moved
    before the next is read: the peak is the loaded result plus one tensor as stored, not
    the whole file on top of the result (a float16 file loaded as float32 would otherwise
    hold 1.5x its float32 size while loading).

    Args:
        path: a ``.safetensors`` file.
        dtype: cast floating-point tensors to this ``torch.dtype`` (integer and boolean
            tensors keep theirs); None keeps the stored dtypes.
        device: where to put the tensors.
        keys: read only these keys; None reads all.

    Returns:
        Key -> ``torch.Tensor``.

    Raises:
        WeightsError: for a missing or invalid file, a key it does not hold, or a stored
            dtype that PyTorch lacks.
    """
    import torch

    path = Path(path)
    available = read_header(path)  # validates the file before anything is read
    wanted = list(available) if keys is None else list(keys)
    absent = [key for key in wanted if key not in available]
    if absent:
        raise WeightsError(f"{path} does not hold {_listing(absent)}")
    base = _data_start(path)
    target = torch.device(device)
    tensors = {}
    with path.open("rb", buffering=0) as stream:
        for key in wanted:
            info = available[key]
            name = _TORCH_DTYPES.get(info.dtype)
            if name is None or not hasattr(torch, name):
                raise WeightsError(
                    f"{path}: {key} is stored as {info.dtype}, which this PyTorch cannot read"
                )
            stored = getattr(torch, name)
            start, stop = info.offsets
            expected = info.numel * torch.empty((), dtype=stored).element_size()
            if stop - start != expected:
                raise WeightsError(
                    f"{path}: {key} has {stop - start} bytes for shape {list(info.shape)} {info.dtype} (needs {expected}); the file is damaged, download it again"
                )
            raw = torch.empty(stop - start, dtype=torch.uint8)
            stream.seek(base + start)
            view = memoryview(raw.numpy())
            done = 0
            while done < len(view):
                count = stream.readinto(view[done:])
                if not count:
                    raise WeightsError(f"{path} ended inside {key}; download it again")
                done += count
            tensor = raw.view(stored).reshape(info.shape)
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[key] = tensor.to(target)
            del raw, tensor
    return tensors


def load_into(
    module: Any,
    state_dict: Mapping[str, Any],
    *,
    skip_keys: Iterable[str] = (),
    source: str = "checkpoint",
    assign: bool = False,
) -> None:
    """Copy a state dict into a module strictly.

    The module's own dtype and device are kept: tensors are converted on copy. With
    ``assign=True`` the checkpoint's tensors replace the module's instead (dtype and device
    as loaded), which is how a module built on the meta device gets real weights without
    a first random initialisation; skipped keys must then not be meta tensors.

    Args:
        module: a ``torch.nn.Module``.
        state_dict: key -> tensor, with the official key names.
        skip_keys: module keys the official loader also leaves out of its checkpoints
            (they keep their initial values); each must exist in the module.
        source: name of the checkpoint, for messages.

    Raises:
        WeightsError: listing every missing key, unexpected key and shape mismatch.
    """
    import torch

    expected = module.state_dict()
    skip = set(skip_keys)
    unknown_skips = sorted(skip - set(expected))
    missing = sorted(set(expected) - set(state_dict) - skip)
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f"{key} (checkpoint {tuple(state_dict[key].shape)}, model {tuple(expected[key].shape)})"
        for key in set(state_dict) & set(expected)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} with another shape: {_listing(mismatched)}")
    if unknown_skips:
        problems.append(f"skip_keys not in the model: {_listing(unknown_skips)}")
    if problems:
        raise WeightsError(
            f"{source} does not fit {type(module).__name__}: "
            + "; ".join(problems)
            + ". Check that the weights are the official files for this model and configuration"
        )
    if assign:
        module.load_state_dict(
            {key: state_dict[key] for key in expected if key not in skip}, strict=False, assign=True
        )
        return
    with torch.no_grad():
        for key, target in expected.items():
            if key in skip:
                continue
            target.copy_(state_dict[key].to(device=target.device, dtype=target.dtype))


def load_checkpoint(module: Any, path: str | Path, *, skip_keys: Iterable[str] = ()) -> None:
    """Read a safetensors file and load it into ``module`` strictly (see :func:`load_into`)."""
    load_into(module, load_safetensors(path), skip_keys=skip_keys, source=str(path))


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown if len(keys) <= _LISTED else f"{shown} and {len(keys) - _LISTED} more"
