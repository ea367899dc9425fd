"""`CROSSDOC_SEARCH_URL` chooses the search index (no engine needed here: the live
legs are tests/contract/test_elasticsearch_index.py and tests/api/test_elasticsearch_api.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError, build_index
from indexer.index.elasticsearch import redacted
from tests.conftest import free_port


def test_an_unreachable_search_engine_is_refused_clearly_at_start(tmp_path: Path) -> None:
    url = f"http://crossdoc:s3cret@127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path, search_url=url)
    with pytest.raises(ConfigurationError, match=r"CROSSDOC_SEARCH_URL.*unavailable") as refused:
        build_index(settings)
    assert "s3cret" not in str(refused.value)  # credentials never in a message


def test_the_search_url_is_embedded_or_http() -> None:
    with pytest.raises(ValidationError, match="CROSSDOC_SEARCH_URL"):
        Settings(search_url="ftp://search:9200")
    with pytest.raises(ValidationError):
        Settings(search_index="Not An Index!")
    assert Settings().search_url == "embedded"
    assert Settings().search_index == "crossdoc-documents"


def test_credentials_are_taken_out_of_a_url_shown() -> None:
    assert redacted("https://u:p@search.example:9200/x") == "https://search.example:9200/x"
    assert redacted("http://search:9200") == "http://search:9200"
