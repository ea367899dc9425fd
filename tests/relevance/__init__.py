"""A relevance test set: generated Korean government notices, judged queries, metrics."""
