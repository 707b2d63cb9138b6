# slrweb's image: the web process (gunicorn, the default command), the Celery workers and beat.
# Dependencies are the locked set `make install` uses (requirements.lock); runs as a non-root
# user; static files are collected with production settings at build time.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN groupadd --system slrweb \
    && useradd --system --gid slrweb --home-dir /app --no-create-home --shell /usr/sbin/nologin slrweb
COPY pyproject.toml requirements.lock ./
COPY slrweb ./slrweb
COPY screening ./screening
RUN pip install --constraint requirements.lock .
COPY . .
RUN DEBUG=0 SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost STATIC_ROOT=/app/staticfiles \
    SLRWEB_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var \
    && mkdir -p /data/media /app/var \
    && chown slrweb:slrweb /data/media /app/var
ENV DEBUG=0 STATIC_ROOT=/app/staticfiles MEDIA_ROOT=/data/media SLRWEB_VAR_DIR=/app/var
USER slrweb
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
# Processes, threads and timeouts: gunicorn.conf.py (WEB_WORKERS, WEB_THREADS, WEB_TIMEOUT).
CMD ["gunicorn", "slrweb.wsgi:application", "--bind", "0.0.0.0:8000"]
