import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

app = Celery("slrweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
