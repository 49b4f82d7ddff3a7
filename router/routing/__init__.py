"""The routing core: the worker registry, the routing policy, waiting requests, and the service that
authenticates a caller, picks a worker and issues its ticket."""
