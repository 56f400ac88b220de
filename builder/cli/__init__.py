"""The command line: the only code that prints, draws progress or exits."""
