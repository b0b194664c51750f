"""moto's server with the AWS behaviours of ``tests.awsrealism`` that live in moto's backends (a
protected load balancer refuses deletion) and the sandbox's (a bucket's EventBridge notifications read
back; a bucket policy's aws:SecureTransport evaluated from the request). Usage:
``python -m tests.realmoto -H 127.0.0.1 -p PORT [--cert FILE --key FILE] [--plain-port PORT]``."""

from __future__ import annotations

import sys

from byoc.sandbox import serve
from tests.awsrealism import lb_deletion_protection

if __name__ == "__main__":
    lb_deletion_protection()
    serve(sys.argv[1:])
