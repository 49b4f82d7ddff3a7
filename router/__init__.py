"""The router: the control plane that signs routing tickets for the best worker of an endpoint.

It keeps a registry of workers from their status reports, answers `/route/` with a signed
ticket for the ready worker with the least expected wait, and publishes its public keys so
workers can verify those tickets.
"""
