"""Providers start and stop workers for the router. `local` runs them as child processes."""
