"""The `tgi-serverless` command line: one entry point that dispatches to each package's command."""

from protocol.version import VERSION as __version__

__all__ = ["__version__"]
