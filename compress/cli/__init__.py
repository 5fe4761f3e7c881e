"""The `compress` command line (`compress.cli.app`); `python -m compress.cli` runs it too."""

from compress.cli.app import app, main
from compress.cli.run import summary_rows, summary_table

__all__ = ["app", "main", "summary_rows", "summary_table"]
