"""The offline tools around the worker: the embedded broker, dataset loaders (`data`), replay, the evaluation
report, the end-to-end evaluation and worker subprocesses."""
