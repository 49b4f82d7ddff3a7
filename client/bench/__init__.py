"""`tgi-serverless bench`: a load benchmark for TGI-style endpoints, hop by hop.

Pure parts (workloads, arrival schedules, statistics, comparison, sweep and scenario policies)
are separate from the I/O (targets, the runner, the router's status sampler, the reports), so
each can be tested alone. See docs/bench.md.
"""
