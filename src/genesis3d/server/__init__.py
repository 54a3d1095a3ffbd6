"""The Genesis studio server: a FastAPI app, a persistent job store and worker processes.

Needs the ``server`` extra (``pip install 'genesis3d[server]'``). Build the app with
:func:`genesis3d.server.app.create_app`.
"""
