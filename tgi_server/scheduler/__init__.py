"""Which requests get the model, step by step: the contract (`base`), the sequential and the
continuous-batching schedulers, batch admission, per-batch timings."""
