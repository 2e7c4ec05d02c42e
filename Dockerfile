# speechqa: CPU-only image. Build: docker compose build   (or: docker build -t speechqa .)
FROM python:3.11-slim

# torch is pinned and taken from PyTorch's CPU wheel index: the default build from PyPI brings
# several GB of CUDA packages. Set TORCH_INDEX_URL="" to use PyPI's wheel instead.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

# Settings come from the environment (SPEECHQA_*); these are the image's defaults. The container
# listens on all its interfaces, so `serve` refuses to start without SPEECHQA_API_KEYS unless
# SPEECHQA_ALLOW_UNAUTHENTICATED=true says an open API is meant.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    SPEECHQA_DATA_DIR=/data \
    SPEECHQA_HOST=0.0.0.0 \
    SPEECHQA_PORT=8000 \
    SPEECHQA_LOG_FORMAT=json

# LightGBM (the answer-span ranker) links the system's OpenMP runtime, which slim images lack.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group speechqa \
    && mkdir -p /data /models \
    && chown speechqa:speechqa /data

WORKDIR /app
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"; \
    else \
        pip install --no-cache-dir "torch==${TORCH_VERSION}"; \
    fi

COPY pyproject.toml README.md ./
COPY service ./service
COPY embeddings ./embeddings
COPY models ./models
COPY seeds ./seeds
# BM25's compiled search is compiled here, into numba's cache beside the installed code, which
# the unprivileged user can read but not write.
RUN pip install --no-cache-dir . \
    && python -c "import jieba; jieba.initialize()" \
    && cd / && python -c "from embeddings.bm25_kernel import warm_up; warm_up()"

USER speechqa
EXPOSE 8000
VOLUME ["/data"]

# /healthz needs no key.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# Host, port and data dir from the environment above.
CMD ["speechqa", "serve", "--seed-dir", "/app/seeds"]
