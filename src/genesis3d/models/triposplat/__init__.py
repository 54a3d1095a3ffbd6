"""TripoSplat (VAST, MIT): image -> 3D Gaussian splats."""
