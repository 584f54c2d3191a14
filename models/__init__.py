"""streamrec's pure domain logic: events, embeddings, ranking, fairness, explanations, metrics. No I/O."""
