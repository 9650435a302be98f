# leadpipe: the daemon, with SQLite in /app/data and the directory inbox in /app/inbox.
#   docker build -t leadpipe .
#   docker run -v leadpipe-data:/app/data -v "$PWD/inbox:/app/inbox" -p 8080:8080 leadpipe
# For PostgreSQL set LEADPIPE_DATABASE_URL; mount a config file and pass LEADPIPE_CONFIG.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 leadpipe \
 && useradd --system --uid 10001 --gid leadpipe --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin leadpipe

# Only what the package needs to build, so a change to tests or docs reuses this layer.
COPY pyproject.toml README.md /src/
COPY daemon/ /src/daemon/
COPY storage/ /src/storage/
COPY notifiers/ /src/notifiers/
RUN pip install /src && rm -rf /src

WORKDIR /app
COPY rules/ /app/rules/
RUN mkdir -p /app/data /app/inbox && chown leadpipe:leadpipe /app/data /app/inbox

ENV LEADPIPE_DATABASE_URL=sqlite:////app/data/leadpipe.db \
    LEADPIPE_WEB__HOST=0.0.0.0
USER leadpipe
VOLUME ["/app/data", "/app/inbox"]
EXPOSE 8080

# `leadpipe status --quiet` exits 0 when the daemon is healthy, non-zero otherwise.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["leadpipe", "status", "--quiet"]
CMD ["leadpipe", "run"]
