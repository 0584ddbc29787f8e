# Floorwatch server, edge agent and simulators: one image, the subcommand picks the part.
#   docker build -t floorwatch .      (docker-compose.yml builds it as `floorwatch:local`)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY edge ./edge
COPY server ./server
COPY dashboards ./dashboards
COPY simulators ./simulators
RUN pip install ".[server]" \
    && cd / && rm -rf /src \
    && groupadd --system --gid 10001 floorwatch \
    && useradd --system --uid 10001 --gid floorwatch --home-dir /data --shell /usr/sbin/nologin floorwatch \
    && mkdir -p /data \
    && chown floorwatch:floorwatch /data

# /data: the server's data dir, the edge's store-and-forward buffer, the simulators' logs.
WORKDIR /data
USER floorwatch

ENV FLOORWATCH_HTTP_HOST=0.0.0.0 \
    FLOORWATCH_HTTP_PORT=8000 \
    FLOORWATCH_DATA_DIR=/data
EXPOSE 8000

# The server's liveness (200 also while a dependency is degraded; the body says which).
# docker-compose.yml overrides this for the edge agent and the simulators, which serve no HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FLOORWATCH_HTTP_PORT', '8000') + '/api/health', timeout=4)"]

ENTRYPOINT ["floorwatch"]
CMD ["server"]
