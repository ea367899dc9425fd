"""Message catalogs (`messages/<lang>.json`): every string the UI shows, Korean first.

A catalog is a flat JSON object of dotted keys. Korean is the default and the
reference: a key missing from another catalog falls back to Korean, and the
tests check that both catalogs have the same keys.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"
LANG_COOKIE = "crossdoc_lang"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The messages of `lang` (Korean for an unknown language)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    text = resources.files("search_api.web").joinpath(f"messages/{lang}.json").read_text("utf-8")
    messages: dict[str, str] = json.loads(text)
    return messages


class Translator:
    """`t(key, **values)`: the message for `key` in one language, with `{name}` filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._messages = catalog(self.lang)
        self._fallback = catalog(DEFAULT_LANGUAGE)

    def __call__(self, key: str, **values: object) -> str:
        text = self._messages.get(key) or self._fallback.get(key)
        if text is None:
            # A missing key is a bug; show it rather than fail the whole page.
            return key
        return text.format(**values) if values else text

    def label(self, key: str, fallback: str) -> str:
        """The message for `key`, or `fallback` when no catalog has it (e.g. an action
        recorded by a newer version, shown as its code rather than as a key)."""
        return self._messages.get(key) or self._fallback.get(key) or fallback

    def subset(self, prefix: str) -> dict[str, str]:
        """The messages under `prefix` (for a page's script), with the fallbacks."""
        merged = {**self._fallback, **self._messages}
        return {k: v for k, v in merged.items() if k.startswith(prefix)}
