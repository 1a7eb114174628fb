"""``python -m privlab`` runs the command line."""

from privlab.cli import main

main()
