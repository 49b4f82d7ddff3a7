"""One sequence's generation: its state, sampling, stopping, detokenizing, grammars, and the events
it emits."""
