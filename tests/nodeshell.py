"""What moto cannot answer for SSM Run Command, injected into a real (moto-backed) SSM client.

moto records every ``SendCommand`` and answers every invocation with "Success" and no output.
``NodeShell`` hooks the client's own events: it sees each script byoc sends (``sent``), answers
``GetCommandInvocation`` with what a test's ``answer(instance_id, script)`` returns, can make an
invocation stay "InProgress" for a few polls, and makes ``SendCommand`` refuse instances the test
calls unreachable with AWS's ``InvalidInstanceId``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse


@dataclass(frozen=True)
class Answer:
    """What the node's script did."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    status: str | None = None  # default: Success for exit 0, Failed otherwise


Answerer = Callable[[str, str], Answer]


@dataclass
class NodeShell:
    """Install with ``NodeShell(answer).install(ctx.client("ssm"))``."""

    answer: Answerer = lambda iid, script: Answer()
    unreachable: set[str] = field(default_factory=set)
    #: polls an invocation stays InProgress before its answer is given
    in_progress_polls: int = 0
    #: polls that, just after SendCommand, find no invocation yet (AWS's eventual consistency:
    #: InvocationDoesNotExist); moto has every invocation at once
    not_yet_polls: int = 0
    #: (instance id, script) of every delivered command, in order
    sent: list[tuple[str, str]] = field(default_factory=list)
    _scripts: dict[str, str] = field(default_factory=dict)
    _polls: dict[tuple[str, str], int] = field(default_factory=dict)
    _missing: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, client: Any) -> NodeShell:
        events = client.meta.events
        events.register("before-parameter-build.ssm.SendCommand", self._read_send)
        events.register("before-call.ssm.SendCommand", self._before_send)
        events.register("after-call.ssm.SendCommand", self._after_send)
        events.register("before-parameter-build.ssm.GetCommandInvocation", self._read_get)
        events.register("before-call.ssm.GetCommandInvocation", self._before_get)
        events.register("after-call.ssm.GetCommandInvocation", self._after_get)
        return self

    def _read_get(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["byoc_invocation"] = (str(params.get("CommandId")), str(params.get("InstanceId")))

    def _before_get(self, context: dict[str, Any], **_: Any) -> Any:
        key = ("not-yet", *context["byoc_invocation"])
        with self._lock:
            n = self._missing[key] = self._missing.get(key, 0) + 1
        if n > self.not_yet_polls:
            return None
        error = {"Error": {"Code": "InvocationDoesNotExist", "Message": ""},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://ssm.invalid/", 400, {}, None), error

    def scripts_for(self, iid: str) -> list[str]:
        return [s for i, s in self.sent if i == iid]

    def _read_send(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["byoc_script"] = "\n".join(params["Parameters"]["commands"])
        context["byoc_ids"] = list(params.get("InstanceIds") or [])

    def _before_send(self, context: dict[str, Any], **_: Any) -> Any:
        if any(i in self.unreachable for i in context["byoc_ids"]):
            message = "Instances not in a valid state for account"
            error = {"Error": {"Code": "InvalidInstanceId", "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://ssm.invalid/", 400, {}, None), error
        return None

    def _after_send(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "Command" not in parsed:
            return
        with self._lock:
            self._scripts[parsed["Command"]["CommandId"]] = context["byoc_script"]
            self.sent += [(i, context["byoc_script"]) for i in context["byoc_ids"]]

    def _after_get(self, parsed: dict[str, Any], **_: Any) -> None:
        command_id, iid = str(parsed.get("CommandId")), str(parsed.get("InstanceId"))
        script = self._scripts.get(command_id)
        if script is None:
            return
        with self._lock:
            n = self._polls[(command_id, iid)] = self._polls.get((command_id, iid), 0) + 1
        if n <= self.in_progress_polls:
            parsed.update(Status="InProgress", StatusDetails="InProgress", ResponseCode=-1,
                          StandardOutputContent="", StandardErrorContent="")
            return
        a = self.answer(iid, script)
        status = a.status or ("Success" if a.exit_code == 0 else "Failed")
        parsed.update(Status=status, StatusDetails=status, ResponseCode=a.exit_code,
                      StandardOutputContent=a.stdout[:24_000], StandardErrorContent=a.stderr[:8_000])


def proton_version(version: str | Callable[[str], str]) -> Answerer:
    """Answers ``SELECT version()`` (byoc ships SQL base64-encoded) as a node's Proton would, in
    JSONCompact, with ``version`` or ``version(instance_id)``; other scripts get moto's empty success."""
    import base64
    import json

    query = base64.b64encode(b"SELECT version()").decode()

    def answer(iid: str, script: str) -> Answer:
        if query not in script:
            return Answer()
        v = version(iid) if callable(version) else version
        return Answer(stdout=json.dumps({"meta": [{"name": "version()", "type": "String"}],
                                         "data": [[v]], "statistics": {"elapsed": 0.001}}))

    return answer
