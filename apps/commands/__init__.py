"""The ``rtbci app`` and ``rtbci demo`` subcommands, which reach the ``rtbci`` CLI through entry points."""
