"""`python -m builder` is the `pybuild` command."""

from builder.cli.app import main

main()
