from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    """Liveness for the container health check and the CI scripts: the database answers."""
    connection.ensure_connection()
    return HttpResponse("ok", content_type="text/plain")
