"""Composition roots: one per process, over one shared part.

- `core`: settings → catalog, object store, extractor, index, indexing pipeline;
- `api`: the API process (`search_api.app.create_app`): adds tokens, passwords,
  rate limits and the dispatcher;
- `worker`: an indexing worker process: no web objects;
- `cli`: what each `crossdoc` command builds.

Nothing is re-exported here, so importing one root loads only what it needs.
"""
