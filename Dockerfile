# The llmpulse image used by docker-compose.yml (worker, sink, topics).
FROM python:3.11-slim
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY . /app
RUN uv sync --all-packages --frozen --no-dev --extra ml && ln -s /app/.venv/bin/llmpulse /usr/local/bin/llmpulse
ENV PATH="/app/.venv/bin:${PATH}"
CMD ["llmpulse", "--help"]
