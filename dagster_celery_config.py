"""Celery settings for dagster-celery workers of the demo (`python -m celery -A
dagster_celery.app worker ...` imports this module by name, so keep it on the workers'
PYTHONPATH).

dagster-celery's workers read the broker and result backend from here, never from the
executor's config in the run; `PQ_CELERY_BROKER` / `PQ_CELERY_BACKEND` are the same variables
the demo's `celery_executor` reads (demo/executor.py), so launcher and workers agree by
construction. `CELERY_BROKER_URL` / `CELERY_RESULT_BACKEND` in a worker's environment still
override both (Celery's own rule).
"""

import os

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/1"

broker_url = os.environ.get("PQ_CELERY_BROKER") or DEFAULT_BROKER
result_backend = os.environ.get("PQ_CELERY_BACKEND") or DEFAULT_BACKEND

# One task at a time per slot: a prefetched task waits behind a long step on one worker while
# another worker idles, and is lost with its worker if that one is killed.
worker_prefetch_multiplier = 1
# Redis only: a worker fetches a task only when a slot is free. Without it a worker holds one
# more (acknowledged) task while it runs one, and a SIGKILLed worker takes both with it.
worker_disable_prefetch = True
