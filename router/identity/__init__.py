"""Worker identity: one-time join tokens, the per-worker credentials they are exchanged for, who
a worker's report speaks as, and the file in the state directory that keeps them (hashed)."""
