"""The router's commands: `router`, `up`, `endpoints` and `simulate`."""
