"""gunicorn's settings for every deployment (read from the working directory: the repository
root, /app in the image). The command lines give only --bind.

Threads, not only processes: a request that waits (a slow page, a lock) holds one thread, not a
whole worker, so the site keeps answering while some requests are slow. Two processes of four
threads fit a 2-core machine; scale with WEB_WORKERS / WEB_THREADS on bigger ones. Each thread
keeps its own database connection (for DB_CONN_MAX_AGE, ten minutes), so PostgreSQL sees
workers x threads connections per web process.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# A request still running after this is killed (its worker restarted) rather than left to hold a
# thread: long work belongs to the Celery workers, uploads are streamed to disk first.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
