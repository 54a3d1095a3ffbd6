"""Pipelines: orchestration of condition -> sample -> decode -> asset, as numbered steps."""
