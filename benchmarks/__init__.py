"""The streamrec benchmark harness (`streamrec bench`): see benchmarks/README.md.

Modules: `workloads` (seeded catalogs and events), `infra` (broker, worker subprocesses, metrics and offsets
sampling), `throughput` (raw aiokafka baseline, Faust null agent, full pipeline), `freshness`, `state`, `ann`,
`report` (the measurement math and the JSON/markdown output) and `run` (the orchestration).
"""
