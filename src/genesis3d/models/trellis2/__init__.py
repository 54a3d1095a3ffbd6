"""TRELLIS.2 (Microsoft, MIT): image -> textured PBR mesh through sparse voxel latents.

Modules: the dense structure flow and its decoder (``flow``, ``structure_decoder``), the
sparse latent flows (``flow``), the SC-VAE shape and texture decoders (``sc_vae``), the
flexible dual grid mesh extraction (``dual_grid``), the stage glue (``structure``) and the
samplers (``sampling``). Parameter names equal the official checkpoints'.
"""
