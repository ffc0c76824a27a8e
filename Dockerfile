# The llmpulse images used by docker-compose.yml.
#   default target (runtime): worker, sink, topics. The model scorers run on ONNX Runtime
#     (the processors' onnx extra): no torch in the image.
#   target models: torch and the exporter, for the one-shot `llmpulse models fetch` that
#     downloads the models, verifies them and exports them to ONNX into the models volume.
FROM python:3.11-slim AS base
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY . /app
ENV PATH="/app/.venv/bin:${PATH}"

FROM base AS models
RUN uv sync --all-packages --frozen --no-dev --extra ml && ln -s /app/.venv/bin/llmpulse /usr/local/bin/llmpulse
CMD ["llmpulse", "models", "fetch"]

FROM base AS runtime
RUN uv sync --all-packages --frozen --no-dev --extra onnx && ln -s /app/.venv/bin/llmpulse /usr/local/bin/llmpulse
CMD ["llmpulse", "--help"]
