"""`python -m rivergen` runs the CLI."""

from rivergen.cli import main

main()
