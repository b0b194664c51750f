"""The S3 state backend for teams: one JSON object in a versioned bucket, locked by a conditional write.

The lock is an object ``<key>.lock`` created with ``If-None-Match: *`` (S3 refuses the write when
it exists), or, with ``state.lock: dynamodb``, an item created with ``attribute_not_exists``. It
records who holds it. A process that dies without releasing leaves it behind; the error names the
holder and ``byoc force-unlock`` removes it. Writes are conditional on the ETag last seen, so two
writers can never silently overwrite each other: a writer writes only over the exact state
(lineage and serial) it last read or wrote, and only a higher serial; on a conflict it stops.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from byoc.aws.errors import error_code, to_cloud_error
from byoc.errors import LockError, StateError
from byoc.model import default_state_key
from byoc.state.base import LockInfo, check_successor, conflict_message
from byoc.state.model import State

#: what S3 answers to a conditional write whose condition does not hold
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


#: how often a held lock is tried again while ``--lock-timeout`` lasts (seconds)
LOCK_POLL = 2.0


def default_key(cluster: str) -> str:
    return default_state_key(cluster)


class S3Backend:
    """State at ``s3://<bucket>/<key>``; the lock in S3 or in a DynamoDB table."""

    kind = "s3"

    def __init__(
        self,
        client: Callable[[str], Any],
        *,
        bucket: str,
        cluster: str,
        key: str | None = None,
        lock_table: str | None = None,
        unlock_hint: str = "byoc force-unlock SPEC",
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.cluster = cluster
        self.key = key or default_key(cluster)
        self.lock_key = f"{self.key}.lock"
        self.lock_table = lock_table
        self.unlock_hint = unlock_hint
        self._etag: str | None = None
        self._seen = False
        #: the state this backend last read or wrote (what its ETag stands for)
        self._last: State | None = None
        #: each resource's text as last written (see State.to_json)
        self._texts: dict[int, tuple[object, bytes]] = {}
        self._held: LockInfo | None = None

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.key}"
        return f"{where} (lock in DynamoDB table {self.lock_table})" if self.lock_table else where

    @property
    def _s3(self) -> Any:
        return self._client("s3")

    def _fail(self, exc: Exception, what: str) -> StateError:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return StateError(
                f"state bucket {self.bucket!r} does not exist (or is not visible to these credentials): "
                "create it with versioning on, e.g. `aws s3api create-bucket --bucket "
                f"{self.bucket}` and `aws s3api put-bucket-versioning --bucket {self.bucket} "
                "--versioning-configuration Status=Enabled`"
            )
        return StateError(f"{self.describe()}: cannot {what} the state: {to_cloud_error(exc)}")

    # -- reading and writing -------------------------------------------------------------------
    def read(self) -> State | None:
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=self.key)
            body = got["Body"].read()
        except Exception as exc:
            if error_code(exc) in {"NoSuchKey", "404"}:
                self._etag, self._seen, self._last = None, True, None
                return None
            raise self._fail(exc, "read") from exc
        self._etag, self._seen = str(got.get("ETag") or ""), True
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(
                f"{self.describe()}: the state object is not valid JSON ({exc}); it was left untouched. "
                "Earlier versions are kept by the bucket's versioning (aws s3api list-object-versions)."
            ) from exc
        try:
            state = State.from_dict(data, source=self.describe())
        except StateError as exc:
            raise StateError(f"{exc} Earlier versions are kept by the bucket's versioning "
                             "(aws s3api list-object-versions).") from exc
        if state.cluster != self.cluster:
            raise StateError(f"{self.describe()}: holds the state of cluster {state.cluster!r}, "
                             f"not {self.cluster!r}")
        self._last = state
        return state

    def write(self, state: State) -> None:
        """A conditional put on the ETag last seen (compare-and-swap). When S3 refuses it, the
        object is read again: unless it still holds exactly the lineage and serial this backend
        last read or wrote (an equal rewrite), the write stops naming both serials."""
        if not self._seen:
            self.read()
        check_successor(self._last, state, self.describe())
        body = state.to_bytes(self._texts)
        for retry in (True, False):
            cond = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
            try:
                put = self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                          ContentType="application/json", **cond)
            except Exception as exc:
                if error_code(exc) not in _CONFLICT:
                    raise self._fail(exc, "write") from exc
                seen = (self._last.lineage, self._last.serial) if self._last else None
                etag, last = self._etag, self._last
                stored = self.read()
                now = (stored.lineage, stored.serial) if stored else None
                if now != seen or not retry:
                    # this backend still stands for what it saw: a write over the new object
                    # needs a fresh read (a new plan), never a retry of this one
                    self._etag, self._last = etag, last
                    raise StateError(conflict_message(self.describe(), stored, seen)) from None
                continue
            self._etag = str(put.get("ETag") or "") or None
            self._last = state
            return
        raise AssertionError("unreachable: the second refused put raises")

    def check_bucket(self) -> None:
        """Refuse a state bucket without versioning: every state write must be recoverable."""
        try:
            status = self._s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        except Exception as exc:
            raise self._fail(exc, "check the bucket of") from exc
        if status != "Enabled":
            raise StateError(
                f"state bucket {self.bucket!r} has versioning off: turn it on so that every state "
                f"write can be recovered (aws s3api put-bucket-versioning --bucket {self.bucket} "
                "--versioning-configuration Status=Enabled)"
            )

    # -- locking -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Take the lock (a held one is waited for up to ``timeout`` seconds, polling), or fail
        naming the holder; release it on the way out."""
        self.check_bucket()
        info = LockInfo.mine(operation)
        deadline = time.monotonic() + timeout
        while not self._acquire(info):
            if time.monotonic() >= deadline:
                raise LockError(self._held_message(self.holder()))
            time.sleep(min(LOCK_POLL, max(0.0, deadline - time.monotonic())))
        self._held = info
        try:
            yield info
        finally:
            self._held = None
            self._release(info)

    def _held_message(self, holder: LockInfo | None) -> str:
        who = holder.describe() if holder else "another process (the lock was just released; run again)"
        gone = " — that process is no longer running on this host" if holder and holder.gone() else ""
        return (
            f"the state of cluster {self.cluster!r} ({self.describe()}) is locked by {who}{gone}. "
            f"Wait for it to finish. If its process is gone, a remote lock stays until removed: "
            f"make sure nobody else is running byoc on this cluster, then run `{self.unlock_hint}`."
        )

    def _acquire(self, info: LockInfo) -> bool:
        try:
            if self.lock_table:
                self._client("dynamodb").put_item(
                    TableName=self.lock_table,
                    Item={"LockID": {"S": self._lock_id}, "Info": {"S": info.to_json()}},
                    ConditionExpression="attribute_not_exists(LockID)",
                )
            else:
                self._s3.put_object(Bucket=self.bucket, Key=self.lock_key, Body=info.to_json().encode(),
                                    ContentType="application/json", IfNoneMatch="*")
        except Exception as exc:
            if error_code(exc) in _CONFLICT | {"ConditionalCheckFailedException"}:
                return False
            raise self._fail(exc, "lock") from exc
        return True

    def _release(self, info: LockInfo) -> None:
        """Remove our lock, and only ours (it may have been force-unlocked and taken since)."""
        with contextlib.suppress(Exception):
            if self.holder() == info:
                self._delete_lock()

    @property
    def _lock_id(self) -> str:
        return f"{self.bucket}/{self.key}"

    def holder(self) -> LockInfo | None:
        try:
            if self.lock_table:
                item = self._client("dynamodb").get_item(
                    TableName=self.lock_table, Key={"LockID": {"S": self._lock_id}}, ConsistentRead=True
                ).get("Item")
                text = item["Info"]["S"] if item else None
            else:
                text = self._s3.get_object(Bucket=self.bucket, Key=self.lock_key)["Body"].read()
        except Exception as exc:
            if error_code(exc) in {"NoSuchKey", "404"}:
                return None
            raise self._fail(exc, "read the lock of") from exc
        if text is None:
            return None
        return LockInfo.parse(text) or LockInfo(0, "unknown", "unknown", "unknown")

    def _delete_lock(self) -> None:
        if self.lock_table:
            self._client("dynamodb").delete_item(TableName=self.lock_table,
                                                 Key={"LockID": {"S": self._lock_id}})
        else:
            self._s3.delete_object(Bucket=self.bucket, Key=self.lock_key)

    def force_unlock(self) -> LockInfo | None:
        holder = self.holder()
        if holder is not None:
            try:
                self._delete_lock()
            except Exception as exc:
                raise self._fail(exc, "unlock") from exc
        return holder
