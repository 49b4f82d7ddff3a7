"""OpenAI's API on the same service: request bodies, response bodies, routes."""
