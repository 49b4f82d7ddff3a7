"""The `tgi-serverless` command line: one entry point that dispatches to each package's command."""

__version__ = "0.1.0"
