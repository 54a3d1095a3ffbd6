"""Tools to check Genesis against known answers of the official implementations."""
