"""The embedded TGI-compatible backend: TGI 3.x's HTTP API served by transformers and torch.

It runs anywhere, CPU included, with any causal LM transformers can load, or with the built-in
tiny model when no model is configured. Start it with `tgi-serverless backend`; embed it with
`tgi_server.http.app.create_app(settings, engine)`.

Nothing heavy is imported here: torch and transformers load only when a model is loaded.
"""
