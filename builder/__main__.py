"""`python -m builder` is the `pybuild` command."""

from builder.cli.entry import main

main()
