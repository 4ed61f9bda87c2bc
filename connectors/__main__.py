"""Run the command line as `python -m connectors`."""

from connectors.cli import app

app()
