# Crossdoc's image: the API (`crossdoc serve`) and the indexing worker (`crossdoc worker`)
# are the same image with another command (see infra/docker-compose.yml).
#
#   docker build -t crossdoc .
#   docker run -p 8000:8000 -v crossdoc-data:/var/lib/crossdoc crossdoc   # embedded default
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# OCR of scans (Tesseract with Korean, poppler to render image-only PDFs); setpriv
# (util-linux) so OCR tools die with the extraction child; Korean fonts for rendering.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng poppler-utils util-linux fonts-nanum \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/crossdoc crossdoc

WORKDIR /opt/crossdoc
COPY pyproject.toml README.md ./
COPY crossdoc ./crossdoc
COPY auth ./auth
COPY storage ./storage
COPY indexer ./indexer
COPY search_api ./search_api
COPY services ./services
COPY infra/__init__.py ./infra/__init__.py
COPY infra/analysis ./infra/analysis
COPY infra/elasticsearch ./infra/elasticsearch
RUN pip install . && rm -rf /opt/crossdoc/build

USER crossdoc
# Spool of uploads in flight, signing keys, and (embedded default) catalog, originals, index.
ENV CROSSDOC_DATA_DIR=/var/lib/crossdoc
VOLUME ["/var/lib/crossdoc"]
EXPOSE 8000

# /readyz: every configured engine answers (catalog, store, extractor, index, queue).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

CMD ["crossdoc", "serve", "--host", "0.0.0.0", "--port", "8000"]
