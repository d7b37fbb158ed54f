"""The Amulet worker: loads the configured models once, then runs jobs from Celery queues.

Start it with ``python -m worker``; ``python -m worker.healthcheck`` is the container
healthcheck and ``python -m worker.download`` pre-fills the model cache.
"""
