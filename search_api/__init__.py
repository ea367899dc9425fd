"""The HTTP API (FastAPI) and the web UI: the outermost layer, composing everything else."""
