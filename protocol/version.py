"""The version every service reports (status reports, `/info`, `--version`)."""

VERSION = "0.1.0"
