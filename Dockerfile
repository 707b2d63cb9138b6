FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY slrweb ./slrweb
COPY screening ./screening
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=0 SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
    STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput
ENV STATIC_ROOT=/app/staticfiles MEDIA_ROOT=/data/media
EXPOSE 8000
