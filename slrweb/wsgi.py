import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from .celery import publisher_warm

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

application = get_wsgi_application()

# Resolve the URLconf now, as gunicorn loads this module in each worker process before it
# accepts connections: importing every view (and scikit-learn behind the ranking) takes over a
# second, which the first request of each new worker process would otherwise wait for. The
# same for the task publisher, which the first request that sends a task would build.
url_patterns = get_resolver().url_patterns
publisher_warm()

# Last: what is loaded by now (~200,000 objects: Django, the views, scikit-learn) lives as long
# as the process. Frozen, the garbage collector's full collections no longer walk it; each one
# walked all of it, 100-200 ms with every thread of the process stopped, a few times a minute
# with 20 reviewers (docs/benchmarks.md).
gc.freeze()
