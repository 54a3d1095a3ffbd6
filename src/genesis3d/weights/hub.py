"""Where a family's weights are: a local folder in the official layout, or the Hub cache.

A folder may be the layout root itself (``diffusion_models/``, ``vae/``, ... side by side),
a folder holding it as ``ckpts/`` (as the model cards say), or a ComfyUI installation
(``models/`` or ``ComfyUI/models/``). The Hub copy is fetched with ``huggingface_hub`` into
its cache, so later runs find it with no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from genesis3d.errors import WeightsError

#: Sub-folders tried below a user's folder, in order.
LAYOUT_CANDIDATES: tuple[str, ...] = ("", "ckpts", "models", "ComfyUI/models")


def find_layout_root(folder: str | Path, required: Sequence[str]) -> Path | None:
    """The folder under ``folder`` that holds every ``required`` file, or None.

    Args:
        folder: what the user pointed at.
        required: files relative to the layout root.
    """
    base = Path(folder).expanduser()
    for candidate in LAYOUT_CANDIDATES:
        root = base / candidate if candidate else base
        if all((root / name).is_file() for name in required):
            return root
    return None


def describe_missing(folder: str | Path, required: Sequence[str]) -> str:
    """Which required files are missing from the best-matching candidate folder."""
    base = Path(folder).expanduser()
    best: tuple[int, Path, list[str]] | None = None
    for candidate in LAYOUT_CANDIDATES:
        root = base / candidate if candidate else base
        missing = [name for name in required if not (root / name).is_file()]
        if best is None or len(missing) < best[0]:
            best = (len(missing), root, missing)
    assert best is not None
    return f"{best[1]} lacks {', '.join(best[2])}"


def pull(hub_id: str, files: Iterable[str], *, cache_dir: str | Path | None = None) -> Path:
    """Download ``files`` of the Hub repository ``hub_id`` into the Hugging Face cache.

    Returns:
        The snapshot folder (the layout root).

    Raises:
        WeightsError: the download failed (no network, unknown repository, gated access),
            with the reason and what to do.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = list(files)
    try:
        folder = snapshot_download(hub_id, allow_patterns=patterns, cache_dir=cache_dir)
    except LocalEntryNotFoundError as error:
        raise WeightsError(
            f"could not download {hub_id}: the Hugging Face Hub cannot be reached ({error}); "
            "connect to the network (or unset HF_HUB_OFFLINE), or copy the files from another "
            "machine and pass --weights DIR"
        ) from error
    except HfHubHTTPError as error:
        raise WeightsError(
            f"could not download {hub_id}: {error}; check the repository name and, for gated "
            "repositories, accept the licence on its page and log in with `hf auth login`"
        ) from error
    except OSError as error:
        raise WeightsError(f"could not download {hub_id}: {error}") from error
    root = Path(folder)
    missing = [name for name in patterns if not (root / name).is_file()]
    if missing:
        raise WeightsError(
            f"{hub_id} was downloaded to {root} but lacks {', '.join(missing)}; the repository "
            "layout may have changed, download the files by hand and pass --weights DIR"
        )
    return root
