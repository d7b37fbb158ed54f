"""The HTTP gateway: validates requests, stores job records in Redis and publishes job ids
to Celery. It never imports torch, transformers or anything from worker/."""
