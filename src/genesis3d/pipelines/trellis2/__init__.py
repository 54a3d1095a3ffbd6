"""TRELLIS.2 (Microsoft, MIT): one picture -> a textured PBR mesh through sparse voxel latents.

Steps of a call (spec sections 1.2-1.9; the pipeline types are in :data:`PIPELINE_TYPES`):
  1. prepare the picture: its own alpha when it has one (any pixel below 255), else a
     BiRefNet matte; at most 1024 px; a square crop around the pixels with alpha > 204;
     colour premultiplied onto black;
  2. condition: DINOv3 ViT-L/16 tokens at 512 px (and 1024 px unless the type is ``512``),
     all 1029 / 4101 tokens after a non-affine LayerNorm; the negative is all zeros;
  3. sample the sparse structure (dense 16^3 flow, then the occupancy decoder) on a 32^3 or
     64^3 latent grid;
  4. sample the shape latent on those voxels; a cascade samples it at 512 first, subdivides
     it with the shape decoder and samples again on the finer grid (1024, or 1536 lowered
     by 128 at a time while the latent holds ``max_tokens`` voxels or more);
  5. sample the texture latent given the normalised shape latent;
  6. decode: the shape decoder's voxels become a flexible-dual-grid mesh, the texture
     decoder follows its subdivisions to PBR voxels (base colour, metallic, roughness,
     alpha); small holes are filled;
  7. export: clean, decimate to ``faces``, unwrap, bake the voxels' PBR attributes
     (trilinear over existing voxels) into ``texture_size`` textures, and map TRELLIS.2's
     Z-up frame to the world frame (:data:`genesis3d.geometry.frames.TRELLIS2_TO_WORLD`).

Samplers, latent normalisations and the image encoder come from the folder's
``pipeline.json``. Every noise tensor is drawn on the CPU from one ``torch.Generator``
seeded with the call's seed, in the official order (structure, shape, cascade shape,
texture), then moved to the device: the same seed gives the same noise on every device.
"""

from genesis3d.pipelines.trellis2.params import (
    PIPELINE_TYPES,
    Trellis2Params,
    crop_to_object,
    dinov3_pixels,
    shrink,
)
from genesis3d.pipelines.trellis2.pipeline import Trellis2ImageTo3DPipeline

__all__ = [
    "PIPELINE_TYPES",
    "Trellis2ImageTo3DPipeline",
    "Trellis2Params",
    "crop_to_object",
    "dinov3_pixels",
    "shrink",
]
