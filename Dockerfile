# Slack thread orchestrator: `orchestrator run --http` on port 3000.
#   docker build -t slack-thread-orchestrator .
#   docker run --stop-timeout 30 -p 3000:3000 -e SLACK_BOT_TOKEN=... -e SLACK_SIGNING_SECRET=... \
#     -e AGENT_URL=... -v orchestrator-data:/data slack-thread-orchestrator
# A stop (SIGTERM) gives running answers ORCH_SHUTDOWN_GRACE (20 s) to finish: give the container
# more than that before it is killed (Docker's default is 10 s).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" orchestrator \
    && useradd --system --uid "${APP_UID}" --gid orchestrator \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin orchestrator

WORKDIR /app

# The package first (README.md is optional: the glob matches nothing when it is absent), so a
# change to the machine YAML does not reinstall the dependencies.
COPY pyproject.toml README.md* ./
COPY orchestrator ./orchestrator
COPY persistence ./persistence
COPY renderers ./renderers
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

# The machine YAML is not part of the installed package: the default path in
# orchestrator/config.py points into the source tree, which a non-editable install does not have.
COPY machines ./machines

RUN chmod -R a+rX /app/machines \
    && mkdir -p /data \
    && chown orchestrator:orchestrator /data

ENV ORCH_MACHINE=/app/machines/thread.yaml \
    ORCH_DATABASE_URL=sqlite+aiosqlite:////data/orchestrator.db

# SQLite lives here; it serves one replica only (several replicas need PostgreSQL).
VOLUME /data

USER ${APP_UID}:${APP_UID}

EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

ENTRYPOINT ["orchestrator"]
CMD ["run", "--http", "--port", "3000"]
