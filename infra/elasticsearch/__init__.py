"""Elasticsearch index settings and mapping (`index-settings.json`) for the scale-out adapter."""
