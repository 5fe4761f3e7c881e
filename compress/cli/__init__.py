"""The `compress` command line (`compress.cli.app`); `python -m compress.cli` runs it too."""

from compress.cli.app import app, main

__all__ = ["app", "main"]
