"""Command groups of ``avatar-pipeline``, one module each (see ``cli.COMMAND_MODULES``)."""
