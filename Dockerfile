# The Phalanx image: one image for the web app, the workers, beat and the migrate job
# (docker-compose.yml chooses the command). Production settings: DEBUG is off unless set.
FROM python:3.11-slim

# PYTHONPATH puts the source tree in /app first for every entry point (manage.py, gunicorn,
# celery), so templates and static files that live beside the code are always found;
# `pip install .` below brings the dependencies.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PHALANX_VAR_DIR=/app/var \
    STATIC_ROOT=/app/static

RUN groupadd --system --gid 10001 phalanx \
    && useradd --system --uid 10001 --gid phalanx --home-dir /app --shell /usr/sbin/nologin phalanx

WORKDIR /app
COPY . .
RUN pip install .

# collectstatic only needs the settings to load: the secret key here is a throwaway.
# var/ holds beat's schedule (and the file broker's folders, unused with Redis); it is the only
# place the unprivileged user writes.
RUN SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost python manage.py collectstatic --no-input \
    && mkdir -p /app/var/broker /app/var/broker-control \
    && chown -R phalanx:phalanx /app/var

USER phalanx
EXPOSE 8000
CMD ["gunicorn", "exchange.wsgi:application", "--bind=0.0.0.0:8000", "--access-logfile=-"]
