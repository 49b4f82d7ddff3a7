"""Which requests get the model, step by step: the contract (`base`, which imports no torch),
the sequential scheduler (`sequential`), TGI's continuous batching (`batching`) with its batch
admission (`admission`), and TGI's per-batch timings (`timings`)."""
