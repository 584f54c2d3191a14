"""The streamrec benchmark harness (`streamrec bench`, from `cli`): see benchmarks/README.md.

`run` runs the phases (`throughput`, `freshness`, `state`, `live_costs`, `ann`, `candidates`) on the seeded
`workloads`, with what they share in `infra` and `cpu`; `report` holds the measurement math and writes the
results, with `plots` (`results` has what both read from them).
"""
