"""Picture preprocessing shared by every family: loading, background removal, framing."""

from genesis3d.preprocess.load import DEFAULT_MAX_PIXELS, Picture, load_image
from genesis3d.preprocess.matte import (
    BACKGROUND_BACKENDS,
    choose_background_backend,
    remove_background,
)

__all__ = [
    "BACKGROUND_BACKENDS",
    "DEFAULT_MAX_PIXELS",
    "Picture",
    "choose_background_backend",
    "load_image",
    "remove_background",
]
