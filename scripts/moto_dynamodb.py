"""moto's DynamoDB-compatible server, with its backend calls serialised.

moto's in-memory backend is not thread-safe: under many concurrent TransactWriteItems
its rollback copy races with other writes and answers 500. Real DynamoDB serialises
conflicting writes itself, so taking one lock per request keeps moto faithful while
connections are still served concurrently.

Usage: python scripts/moto_dynamodb.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    # The concurrency tests open 200 connections at once; werkzeug's listen queue of 128
    # drops the rest while the accepting thread is busy, and a dropped SYN is retried
    # only after the SDK's 1 s connect timeout has passed.
    BaseWSGIServer.request_queue_size = 1024
    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
