"""The router's HTTP layer: the application, its routes, the management API, the status page and
metrics."""
