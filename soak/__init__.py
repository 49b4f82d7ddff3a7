"""The soak (`make soak`, docs/reliability.md): the local stack under steady load for minutes,
sampled, then judged. `soak.verdict` holds the rules (pure), `soak.run` the procedure."""
