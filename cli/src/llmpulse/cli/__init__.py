"""The ``llmpulse`` command: wiring only; each room owns its subcommands.

Example:
    >>> from click.testing import CliRunner
    >>> from llmpulse.cli.main import main
    >>> CliRunner().invoke(main, ["--help"]).exit_code
    0
"""
