"""``python -m genesis3d`` runs the command line."""

from genesis3d.cli.main import main

main()
