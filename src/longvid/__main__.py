"""``python -m longvid`` runs the command line."""

from longvid.cli import main

main()
