"""Layers shared by two or more model families, one concept per module."""
