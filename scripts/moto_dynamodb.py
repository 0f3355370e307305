"""moto's DynamoDB-compatible server, with its backend calls serialised.

moto's in-memory backend is not thread-safe: under many concurrent TransactWriteItems
its rollback copy races with other writes and answers 500. Real DynamoDB serialises
conflicting writes itself, so taking one lock per request keeps moto faithful while
connections are still served concurrently.

Usage: python scripts/moto_dynamodb.py HOST PORT
"""

import copy
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, run_simple


def _shard_deepcopy(self, memo):
    """A table's stream as moto's transaction backup copies it: its list of records, not
    the records, which never change once written. moto deep-copies the whole table before
    every TransactWriteItems (to roll back a failed one); copying every stream record
    too made each transaction slower as the table's stream grew, past the tests' time-outs
    under the concurrency tests. A rolled-back transaction still leaves no record."""
    clone = copy.copy(self)
    memo[id(self)] = clone
    clone.table = copy.deepcopy(self.table, memo)
    clone.items = list(self.items)
    return clone


def main() -> None:
    from moto.dynamodb.models.table import StreamShard

    StreamShard.__deepcopy__ = _shard_deepcopy

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
