"""OpenAI's API on the same service: request bodies (`requests`), response bodies and stream
chunks (`wire`), routes (`routes`)."""
