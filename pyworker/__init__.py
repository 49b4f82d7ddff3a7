"""The PyWorker: the per-worker proxy that checks routing tickets and relays requests to TGI.

One runs beside each backend. It lets nothing through without a valid ticket, counts the
workload it has in flight, reports its state to the router, and relays `/generate` (JSON) and
`/generate_stream` (SSE) unchanged.
"""
