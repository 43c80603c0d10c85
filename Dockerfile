# One image for every shoprelay service (web, worker, scheduler); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SHOPRELAY_INSTANCE_PATH=/data

RUN useradd --create-home --uid 1000 shoprelay && mkdir -p /data && chown shoprelay /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY webapp ./webapp
COPY workers ./workers
COPY feeds ./feeds
RUN pip install .

USER shoprelay
VOLUME ["/data"]
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--access-logfile", "-", "webapp:create_app()"]
