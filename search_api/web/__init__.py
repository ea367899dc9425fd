"""The web UI: server-rendered pages (Jinja2) and small scripts of our own over the same API.

The browser carries the same access token as an API client, in an `HttpOnly`
cookie instead of an `Authorization` header (see `session.py`); every page and
every call goes through the API's own dependencies and route functions, so the
UI has no permission path of its own.
"""
