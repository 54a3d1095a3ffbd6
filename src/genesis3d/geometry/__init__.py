"""Geometry: functions over arrays (positions, faces, UVs, images). Never imports models,
pipelines or the server."""
