"""Picture preprocessing shared by every family: loading, background removal, framing.

:mod:`~genesis3d.preprocess.load` reads PNG/JPEG/WebP into a :class:`Picture`;
:mod:`~genesis3d.preprocess.matte` cuts the object out (``alpha``, ``auto``, ``rembg``);
:mod:`~genesis3d.preprocess.framing` holds the crop / pad / centre / resize rules.
"""

from genesis3d.preprocess.load import DEFAULT_MAX_PIXELS, Picture, load_image
from genesis3d.preprocess.matte import (
    BACKGROUND_BACKENDS,
    BackgroundBackend,
    choose_background_backend,
    remove_background,
)

__all__ = [
    "BACKGROUND_BACKENDS",
    "DEFAULT_MAX_PIXELS",
    "BackgroundBackend",
    "Picture",
    "choose_background_backend",
    "load_image",
    "remove_background",
]
