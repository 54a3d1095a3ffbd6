"""Model weights: safetensors reading and strict loading (no pickle files, ever)."""
