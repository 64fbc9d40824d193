# Slack thread orchestrator: `orchestrator run --http` on port 3000.
#   docker build -t slack-thread-orchestrator .
#   docker run --stop-timeout 30 -p 3000:3000 -e SLACK_BOT_TOKEN=... -e SLACK_SIGNING_SECRET=... \
#     -e AGENT_URL=... -v orchestrator-data:/data slack-thread-orchestrator
# A stop (SIGTERM) gives running answers ORCH_SHUTDOWN_GRACE (20 s) to finish: give the container
# more than that before it is killed (Docker's default is 10 s).
# After an upgrade of the image: `docker run ... slack-thread-orchestrator db upgrade` once (or
# add --upgrade to `run`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" orchestrator \
    && useradd --system --uid "${APP_UID}" --gid orchestrator \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin orchestrator

WORKDIR /app

# A normal (non-editable) install: the default machine and the schema migrations are part of
# the package. README.md is optional: the glob matches nothing when it is absent.
COPY pyproject.toml LICENSE README.md* ./
COPY orchestrator ./orchestrator
COPY persistence ./persistence
COPY renderers ./renderers
COPY machines ./machines
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info ./orchestrator ./persistence ./renderers ./machines \
    && mkdir -p /data \
    && chown orchestrator:orchestrator /data

ENV ORCH_DATABASE_URL=sqlite+aiosqlite:////data/orchestrator.db

# SQLite lives here; it serves one replica only (several replicas need PostgreSQL).
VOLUME /data

USER ${APP_UID}:${APP_UID}

EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

ENTRYPOINT ["orchestrator"]
CMD ["run", "--http", "--port", "3000"]
