"""One module per ``rtbci`` subcommand; see :mod:`rtbci.cli`."""
