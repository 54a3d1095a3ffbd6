"""TripoSG (VAST, MIT): image -> detailed untextured mesh (rectified-flow DiT over an SDF VAE)."""
