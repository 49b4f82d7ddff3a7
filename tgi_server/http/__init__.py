"""TGI's HTTP API on aiohttp: the application, its routes, request and response
bodies, streams."""
