# The llmpulse images used by docker-compose.yml.
#   default target (runtime): worker, sink, topics. The model scorers run on OpenVINO, else
#     ONNX Runtime (the processors' openvino extra: both runtimes, no torch, no NNCF).
#   target models: torch, the exporter and NNCF, for the one-shot `llmpulse models fetch` that
#     downloads the models, verifies them, exports them to ONNX and makes their OpenVINO int8
#     models into the models volume.
FROM python:3.11-slim AS base
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY . /app
ENV PATH="/app/.venv/bin:${PATH}"

FROM base AS models
RUN uv sync --all-packages --frozen --no-dev --extra ml && ln -s /app/.venv/bin/llmpulse /usr/local/bin/llmpulse
CMD ["llmpulse", "models", "fetch"]

FROM base AS runtime
# Start-up: the .pyc files ship in the image (--compile-bytecode), and the default guardrail
# policy's Hyperscan gates are compiled here once (~2 CPU min) into LLMPULSE_CACHE_DIR, so a
# new container's worker loads them instead (docs/DEVELOPMENT.md, "Start-up").
ENV LLMPULSE_CACHE_DIR=/app/.cache/llmpulse
RUN uv sync --all-packages --frozen --no-dev --extra openvino --compile-bytecode \
    && ln -s /app/.venv/bin/llmpulse /usr/local/bin/llmpulse \
    && llmpulse guardrails prepare
CMD ["llmpulse", "--help"]
