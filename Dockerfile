# speechqa: CPU-only image. Build: docker compose build
FROM python:3.11-slim

# Where pip finds a CPU-only torch wheel (PyTorch publishes a CPU wheel index); without it
# pip takes the default build, which brings several GB of CUDA packages.
ARG TORCH_INDEX_URL=""
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    SPEECHQA_DATA_DIR=/data \
    SPEECHQA_HOST=0.0.0.0 \
    SPEECHQA_PORT=8000

RUN useradd --create-home --uid 10001 speechqa \
    && mkdir -p /data /models && chown speechqa:speechqa /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY embeddings ./embeddings
COPY models ./models
COPY seeds ./seeds

RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"; \
    else \
        pip install --no-cache-dir "torch==${TORCH_VERSION}"; \
    fi \
    && pip install --no-cache-dir . \
    && python -c "import jieba; jieba.initialize()"

USER speechqa
EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

CMD ["speechqa", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data", "--seed-dir", "/app/seeds"]
