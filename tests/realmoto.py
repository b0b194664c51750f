"""moto's server with the AWS behaviours of ``tests.awsrealism`` that live in moto's backends (a
protected load balancer refuses deletion) and the sandbox's (a bucket's EventBridge notifications read
back). Usage: ``python -m tests.realmoto -H 127.0.0.1 -p PORT``."""

from __future__ import annotations

from byoc.sandbox import moto_answers_as_aws
from tests.awsrealism import lb_deletion_protection

if __name__ == "__main__":
    from moto.server import main

    lb_deletion_protection()
    moto_answers_as_aws()
    main()
