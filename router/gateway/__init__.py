"""Gateway mode: the router proxies an endpoint's requests itself, for unmodified clients."""
