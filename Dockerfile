# The app's image: the web process (`crm serve`) and the SAQ workers (`saq jobs.worker.settings`)
# run from it with different commands; see docs/deploy.md and docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 PORT=8000
WORKDIR /srv/crm

COPY pyproject.toml README.md piccolo_conf.py ./
COPY app ./app
COPY jobs ./jobs
COPY piccolo_migrations ./piccolo_migrations
COPY templates ./templates
COPY static ./static
RUN pip install . && useradd --system --home /srv/crm crm && chown -R crm /srv/crm
USER crm

EXPOSE 8000
CMD ["crm", "serve"]
