"""``python -m s4rec``: the same command line as ``s4rec``."""

from .cli import main

main()
