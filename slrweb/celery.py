import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

app = Celery("slrweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweep(sender, **_kwargs):
    """The sweep that re-sends unsent imports and fails those whose worker died; it needs a
    `celery -A slrweb beat` process (one per deployment) beside the workers."""
    from django.conf import settings

    sender.add_periodic_task(
        settings.IMPORT_SWEEP_SECONDS, sender.signature("screening.sweep"), name="import sweep"
    )
