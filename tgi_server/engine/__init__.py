"""Engines: what the HTTP layer needs of the model (`base`, which imports no torch), run on a
thread of this process (`thread`) or in a model-server process of its own (`shard`)."""
