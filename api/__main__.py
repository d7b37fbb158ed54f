"""``python -m api [--host H] [--port P]``: serve the gateway with uvicorn.

The same as ``uvicorn --factory api.main:create_app --host 0.0.0.0 --port 8000``.
"""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description="Run the Amulet HTTP gateway.")
    parser.add_argument("--host", default="0.0.0.0", help="Interface to bind (default: all).")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default: 8000).")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1).")
    args = parser.parse_args()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Behind a reverse proxy, X-Forwarded-* give the client's address in the access log.
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
