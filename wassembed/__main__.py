"""``python -m wassembed``: the command line."""

from .cli import main

main()
