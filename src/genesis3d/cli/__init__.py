"""The ``genesis3d`` command line: thin, parse -> settings -> api."""
