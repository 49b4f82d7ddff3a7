"""The fault suite (`make faults`, run by CI after `make test`, not part of it): real stacks of
router, PyWorkers and backends on 127.0.0.1, with faults injected on purpose (signals, network
namespaces, stalls, a full disk, a skewed clock). Each case prints what it measured (time to
detect, time to recover, requests lost) and asserts the promise docs/reliability.md makes."""
