"""Deployment files shipped with Crossdoc (package data, found with `importlib.resources`)."""
