"""`byoc rotate-password`: the node-side script run for real (bash, with fake aws/docker/curl on its
PATH and its paths moved into a temporary directory), and the roll on moto with each node's part
injected through tests.nodeshell: new AWSCURRENT and old AWSPREVIOUS, nodes in order, a failing
node stops the roll, a re-run resumes without a new value, and the password is in no command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from byoc.api import Cluster
from byoc.cli import main
from byoc.errors import ByocError
from byoc.operations.rotate import (
    CURRENT,
    PREVIOUS,
    RotationError,
    plan_rotation,
    rotate_password,
    tool_command,
)
from byoc.operations.ssm import node_instances, secret_arn_of
from byoc.userdata import PASSWORD_TOOL, password_script
from tests.daytwo import applied
from tests.nodeshell import Answer, NodeShell

ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret:byoc/dev/admin-AbCdEf"
MOUNTED = "/etc/proton-server/users.d/zz-byoc-users.yaml"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- the node-side script, run by bash ------------------------------------------------------------

FAKES = {
    # aws secretsmanager get-secret-value [--version-stage S | --version-id V]: from files
    "aws": r"""#!/bin/bash
echo "aws $*" >>"$FAKE/calls"
f="$FAKE/stage-AWSCURRENT"
while (($#)); do
  case $1 in --version-stage) f="$FAKE/stage-$2"; shift ;; --version-id) f="$FAKE/version-$2"; shift ;; esac
  shift
done
[[ -f "$f" ]] || { echo "An error occurred (ResourceNotFoundException)" >&2; exit 254; }
cat "$f"
""",
    # Proton: up (checks the password against the override it has "reloaded"), refuse, or down
    "curl": r"""#!/bin/bash
out=/dev/null cfg=0
while (($#)); do case $1 in -o) out=$2; shift ;; -K) cfg=1 ;; esac; shift; done
mode=$(cat "$FAKE/proton" 2>/dev/null || echo up)
if [[ "$mode" == down ]]; then echo "curl: (7) Failed to connect" >&2; exit 7; fi
((cfg)) || exit 0
line=$(cat)
pw=${line#user = \"default:}
pw=${pw%\"}
have=$(grep -m1 -o '[0-9a-f]\{64\}' "$USERS" 2>/dev/null)
if [[ "$mode" == up && "$(printf %s "$pw" | sha256sum | cut -d' ' -f1)" == "$have" ]]; then
  echo 1 >"$out"; printf 200
else
  printf 'Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)' >"$out"
  printf 516
fi
""",
    "docker": '#!/bin/bash\nif [[ -f "$FAKE/mounts" ]]; then cat "$FAKE/mounts"; else exit 1; fi\n',
    "dnf": '#!/bin/bash\necho "dnf $*" >>"$FAKE/calls"\nexit 1\n',
    "chown": "#!/bin/bash\nexit 0\n",
    "sleep": "#!/bin/bash\nexit 0\n",
    # install -d -m M -o U -g G DIR: as this user, without the owner
    "install": '#!/bin/bash\nargs=()\n'
               'while (($#)); do case $1 in -o|-g) shift ;; *) args+=("$1") ;; esac; shift; done\n'
               'exec /usr/bin/install "${args[@]}"\n',
}


@dataclass
class Node:
    """One node's file system in a temporary directory, and its fake AWS CLI, docker and Proton."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in ("fake", "bin", "etc", "sbin", "per-boot", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        for name, text in FAKES.items():
            f = self.root / "bin" / name
            f.write_text(text)
            f.chmod(0o755)
        self.env = {"PATH": f"{self.root / 'bin'}:/usr/bin:/bin", "FAKE": str(self.root / "fake"),
                    "USERS": str(self.users), "HOME": str(self.root)}

    @property
    def users(self) -> Path:
        return self.root / "etc/users.d/zz-byoc-users.yaml"

    @property
    def hook(self) -> Path:
        return self.root / "per-boot/byoc-proton-password"

    def localize(self, script: str) -> str:
        for real, here in (("/etc/byoc/proton", "etc"), ("/usr/local/sbin", "sbin"),
                           ("/var/lib/cloud/scripts/per-boot", "per-boot"), ("/var/log", "log")):
            script = script.replace(real, str(self.root / here))
        return script

    def secret(self, stage: str, value: str | None, version: str | None = None) -> None:
        f = self.root / "fake" / f"stage-{stage}"
        if value is None:
            f.unlink(missing_ok=True)
            return
        f.write_text(value)
        if version:
            (self.root / "fake" / f"version-{version}").write_text(value)

    def proton(self, mode: str) -> None:
        (self.root / "fake/proton").write_text(mode)

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = self.root / "script.sh"
        path.write_text(self.localize(script))
        return subprocess.run(["bash", str(path), *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)

    def held(self) -> str:
        found = re.search(r"[0-9a-f]{64}", self.users.read_text())
        assert found
        return found.group(0)

    def calls(self) -> str:
        f = self.root / "fake/calls"
        return f.read_text() if f.exists() else ""


@pytest.fixture
def node(tmp_path: Path) -> Node:
    n = Node(tmp_path)
    n.secret(CURRENT, "first-Password-1", "v1")
    return n


TOOL = password_script(ARN, "us-west-2")


def test_first_boot_writes_the_override_and_the_per_boot_hook(node: Node) -> None:
    done = node.run(TOOL, "--install", "--boot", "--no-verify")
    assert done.returncode == 0, done.stderr
    assert node.held() == sha("first-Password-1")
    assert stat.S_IMODE(node.users.stat().st_mode) == 0o600
    hashes = re.findall(r"[0-9a-f]{64}", node.users.read_text())
    assert len(hashes) == 5 and len(set(hashes)) == 5  # the locked users: random, distinct
    assert "first-Password-1" not in node.users.read_text() + done.stdout + done.stderr
    hook = node.hook.read_text()
    assert hook == f"#!/bin/bash\nexec {node.root}/sbin/byoc-proton-password --boot " \
                   f">>{node.root}/log/byoc-bootstrap.log 2>&1\n"
    assert stat.S_IMODE(node.hook.stat().st_mode) == 0o700
    assert "--region us-west-2" in node.calls() and "dnf" not in node.calls()
    # a reboot with the same password changes nothing
    again = node.run(TOOL, "--boot")
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_status_says_which_version_the_override_holds_and_nothing_else(node: Node) -> None:
    assert node.run(TOOL, "--status").stdout == "none\n"
    node.run(TOOL, "--no-verify")
    assert node.run(TOOL, "--status").stdout == "AWSCURRENT\n"
    node.secret(PREVIOUS, "first-Password-1")
    node.secret(CURRENT, "second-Password-2", "v2")
    out = node.run(TOOL, "--status")
    assert out.stdout == "AWSPREVIOUS\n" and out.returncode == 0
    assert sha("first-Password-1") not in out.stdout + out.stderr
    node.secret(PREVIOUS, "something-else")
    assert node.run(TOOL, "--status").stdout == "other\n"


def test_a_new_version_is_written_and_must_log_in(node: Node) -> None:
    node.run(TOOL, "--no-verify")
    node.secret(PREVIOUS, "first-Password-1")
    node.secret(CURRENT, "second-Password-2", "v2")
    done = node.run(TOOL, "--version-id", "v2")
    assert done.returncode == 0, done.stderr
    assert "the new password logs in" in done.stdout
    assert node.held() == sha("second-Password-2")
    assert "--version-id v2" in node.calls()


@pytest.mark.parametrize(("mode", "code", "words"), [
    ("refuse", 3, "Proton refuses the new password (HTTP 516: Code: 516. DB::Exception: default: "
                  "Authentication failed. (AUTHENTICATION_FAILED))"),
    ("down", 4, "Proton does not answer on 127.0.0.1:8123"),
])
def test_a_password_that_does_not_log_in_is_undone(node: Node, mode: str, code: int, words: str) -> None:
    node.run(TOOL, "--no-verify")
    before = node.users.read_text()
    node.secret(CURRENT, "second-Password-2", "v2")
    node.proton(mode)
    done = node.run(TOOL, "--version-id", "v2")
    assert done.returncode == code
    assert words in done.stderr and "previous override restored" in done.stdout
    assert node.users.read_text() == before


def test_a_container_that_mounts_the_file_itself_gets_it_in_place(node: Node) -> None:
    """Nodes booted by an older byoc mount the override file, not its directory: a rename would
    leave the container on the old file, so the new content is written into the same inode."""
    node.run(TOOL, "--no-verify")
    inode = node.users.stat().st_ino
    (node.root / "fake/mounts").write_text(f"/var/lib/proton\n{MOUNTED}\n")
    node.secret(CURRENT, "second-Password-2", "v2")
    assert node.run(TOOL, "--version-id", "v2").returncode == 0
    assert node.users.stat().st_ino == inode and node.held() == sha("second-Password-2")
    # a directory mount (this byoc's nodes): renamed in
    (node.root / "fake/mounts").write_text("/etc/proton-server/users.d\n")
    node.secret(CURRENT, "third-Password-3", "v3")
    assert node.run(TOOL, "--version-id", "v3").returncode == 0
    assert node.users.stat().st_ino != inode and node.held() == sha("third-Password-3")


def test_the_aws_cli_is_installed_when_missing(node: Node) -> None:
    (node.root / "bin/aws").unlink()
    done = node.run(TOOL, "--status")
    assert "dnf install -y awscli-2" in node.calls()
    assert done.returncode == 5 and "no AWS CLI" in done.stderr  # the fake dnf fails


def test_the_ssm_commands_install_the_script_or_leave_the_node_alone(node: Node) -> None:
    status = node.run(tool_command(ARN, "us-west-2", "--status"))
    assert status.stdout == "none\n" and not (node.root / "sbin/byoc-proton-password").exists()
    done = node.run(tool_command(ARN, "us-west-2", "--no-verify"))
    assert done.returncode == 0, done.stderr
    installed = node.root / "sbin/byoc-proton-password"
    assert installed.read_text() == node.localize(TOOL) and stat.S_IMODE(installed.stat().st_mode) == 0o700
    assert node.hook.exists() and node.held() == sha("first-Password-1")


# --- the roll, on moto -------------------------------------------------------------------------------

SELECT_1 = json.dumps({"meta": [{"name": "1", "type": "uint8"}], "data": [[1]], "statistics": {}})


@dataclass
class Fleet:
    """Each node's part, as the nodes would do it: which secret version its override holds."""

    sm: Any
    arn: str
    held: dict[str, str]  # instance id → version id
    failing: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)  # take the password but never answer with it
    log: list[tuple[str, str]] = field(default_factory=list)  # (instance id, what)

    def stages(self) -> dict[str, list[str]]:
        return self.sm.describe_secret(SecretId=self.arn)["VersionIdsToStages"]

    def answer(self, iid: str, script: str) -> Answer:
        if "bash -s -- --status" in script:
            self.log.append((iid, "status"))
            stages = self.stages().get(self.held[iid], [])
            said = CURRENT if CURRENT in stages else PREVIOUS if PREVIOUS in stages else "other"
            return Answer(stdout=said + "\n")
        found = re.search(r"--install --version-id (\S+)", script)
        if found:
            self.log.append((iid, "apply"))
            if iid in self.failing:
                return Answer(stdout="byoc-proton-password: previous override restored\n",
                              stderr="byoc-proton-password: ERROR: Proton refuses the new password "
                                     "(HTTP 516: Code: 516. Authentication failed)\n", exit_code=3)
            self.held[iid] = found.group(1)
            return Answer(stdout="byoc-proton-password: the new password logs in\n")
        if "get-secret-value" in script and "127.0.0.1:8123" in script:
            self.log.append((iid, "select"))
            if iid in self.silent:
                return Answer(stderr="Code: 516. Authentication failed", exit_code=3)
            return Answer(stdout=SELECT_1)
        raise AssertionError("unexpected script")


@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: Any) -> Any:
    eng = applied(tmp_path, monkeypatch, count=3)
    monkeypatch.setattr("byoc.cli.nodeops._engine", lambda spec, parallelism, adopt=False: eng)
    return eng


@pytest.fixture
def fleet(cluster: Any) -> tuple[Fleet, NodeShell]:
    sm = cluster.ctx.client("secretsmanager")
    arn = secret_arn_of(cluster.state())
    (first,) = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    f = Fleet(sm, arn, {iid: first for iid in node_instances(cluster.state()).values()})
    return f, NodeShell(f.answer).install(cluster.ctx.client("ssm"))


def value(fleet: Fleet, stage: str) -> str:
    return str(fleet.sm.get_secret_value(SecretId=fleet.arn, VersionStage=stage)["SecretString"])


def test_rotation_puts_a_new_value_and_moves_every_node_in_order(cluster: Any, fleet: Any) -> None:
    f, shell = fleet
    old = value(f, CURRENT)
    state = cluster.state()
    plan = plan_rotation(cluster.ctx, state)
    assert not plan.resume and plan.to_move == ["0", "1", "2"]
    result = rotate_password(cluster.ctx, state, plan)
    new = value(f, CURRENT)
    assert new != old and value(f, PREVIOUS) == old
    assert len(new) == 32 and new.isalnum()  # generated as at create: no punctuation
    assert result.ok and result.new_value and result.moved == ["0", "1", "2"]
    nodes = node_instances(state)
    steps = [(iid, what) for iid, what in f.log if what != "status"]
    assert steps == [(nodes[n], what) for n in ("0", "1", "2") for what in ("apply", "select")]
    assert set(f.held.values()) == {result.version_id}
    assert f.stages()[result.version_id] == [CURRENT]
    # no command carried either password (nor its hash)
    for _, script in shell.sent:
        for secret in (old, new):
            assert secret not in script and sha(secret) not in script


def test_a_failing_node_stops_the_roll_and_a_rerun_resumes_without_a_new_value(
    cluster: Any, fleet: Any, capsys: Any
) -> None:
    f, _ = fleet
    nodes = node_instances(cluster.state())
    old = value(f, CURRENT)
    f.failing.add(nodes["1"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert exc.value.code == 1
    message = " ".join(err.split())
    assert f"password rotation stopped at node 1: node 1 ({nodes['1']}): ERROR: Proton refuses the new " \
           "password (HTTP 516: Code: 516. Authentication failed); its previous users override was put back" \
           in message
    assert "Nodes 0 use the new password" in message and "Nodes 2 were not touched" in message
    assert "run `byoc rotate-password` again: it resumes with the same new password" in message
    assert "Traceback" not in out + err
    assert not any(iid == nodes["2"] and what == "apply" for iid, what in f.log)
    new = value(f, CURRENT)
    assert value(f, PREVIOUS) == old  # the secret keeps both while nodes 1 and 2 hold the old one

    f.failing.clear()
    f.log.clear()
    plan = plan_rotation(cluster.ctx, cluster.state())
    assert plan.resume and plan.to_move == ["1", "2"] and plan.holds["0"] == CURRENT
    assert "no new password is generated" in plan.describe()
    with pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert "Resuming an unfinished rotation" in out and "complete" in out
    assert value(f, CURRENT) == new and value(f, PREVIOUS) == old  # no third value
    applied_to = [iid for iid, what in f.log if what == "apply"]
    assert applied_to == [nodes["1"], nodes["2"]]
    # every node has moved: the next run starts a new rotation
    assert not plan_rotation(cluster.ctx, cluster.state()).resume


def test_a_node_that_cannot_say_what_it_holds_stops_it_before_any_change(cluster: Any, fleet: Any) -> None:
    f, shell = fleet
    nodes = node_instances(cluster.state())
    shell.unreachable.add(nodes["2"])
    before = f.stages()
    with pytest.raises(ByocError, match=r"nothing was changed: node 2 .*not reachable through SSM"):
        plan_rotation(cluster.ctx, cluster.state())
    assert f.stages() == before


def test_the_node_must_answer_with_the_new_password_and_be_healthy(cluster: Any, fleet: Any) -> None:
    f, _ = fleet
    nodes = node_instances(cluster.state())
    f.silent.add(nodes["0"])
    state = cluster.state()
    with pytest.raises(RotationError, match="took the new password but does not answer with it") as exc:
        rotate_password(cluster.ctx, state, plan_rotation(cluster.ctx, state))
    assert exc.value.result.failed == "0" and exc.value.result.untouched == ["1", "2"]
    f.silent.clear()
    # node 1 leaves a target group: the gate waits for it (here: no time), then stops the roll
    elbv2 = cluster.ctx.client("elbv2")
    (tg, *_) = [r.id for r in state.resources.values() if r.kind == "aws_lb_target_group"]
    elbv2.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": nodes["1"], "Port": 8123}])
    plan = plan_rotation(cluster.ctx, state)
    assert plan.resume
    stopped = r"node 1 \(i-\w+\) took the new password but is not healthy"
    with pytest.raises(RotationError, match=stopped) as exc:
        rotate_password(cluster.ctx, state, plan, health_timeout=0)
    assert exc.value.result.already == ["0"] and exc.value.result.failed == "1"  # 0 took it before


def test_an_interrupted_roll_says_how_to_resume_and_the_rerun_finishes(
    cluster: Any, fleet: Any, capsys: Any, monkeypatch: Any
) -> None:
    import byoc.operations.rotate as rotation

    f, _ = fleet
    old = value(f, CURRENT)
    real = rotation.rotate_password

    def interrupted(ctx: Any, state: Any, plan: Any, progress: Any = None) -> Any:
        def stop_at_node_1(node: str, what: str) -> None:
            if node == "1":
                raise KeyboardInterrupt
        return real(ctx, state, plan, progress=stop_at_node_1)

    monkeypatch.setattr(rotation, "rotate_password", interrupted)
    with pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert exc.value.code == 1 and "Traceback" not in out + err
    assert "password rotation interrupted" in " ".join(err.split()) and "resumes" in err
    new = value(f, CURRENT)
    assert new != old and value(f, PREVIOUS) == old
    monkeypatch.setattr(rotation, "rotate_password", real)
    with pytest.raises(SystemExit) as exc:  # the lock was released; the rerun resumes, no third value
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert "Resuming an unfinished rotation" in out and value(f, CURRENT) == new


def test_cli_confirms_and_holds_the_lock(cluster: Any, fleet: Any, capsys: Any) -> None:
    f, _ = fleet
    before = f.stages()
    with pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--no-color"])  # no terminal to ask on
    _, err = capsys.readouterr()
    assert exc.value.code == 1 and "needs confirmation" in err and f.stages() == before
    with cluster.backend.lock("backup"), pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--no-color"])
    _, err = capsys.readouterr()
    assert exc.value.code == 1 and "locked" in err and f.stages() == before


def test_json_and_the_api(cluster: Any, fleet: Any, capsys: Any) -> None:
    f, _ = fleet
    with pytest.raises(SystemExit) as exc:
        main(["rotate-password", "specs/dev.yaml", "--auto-approve", "--json"])
    out, _ = capsys.readouterr()
    assert exc.value.code in (0, None)
    doc = json.loads(out)
    assert doc["ok"] and doc["moved"] == ["0", "1", "2"] and doc["new_value"] is True
    assert CURRENT in f.stages()[doc["version_id"]]
    c = Cluster(cluster.spec, ctx=cluster.ctx, backend=cluster.backend)
    again = c.rotate_password()
    assert again.ok and again.version_id != doc["version_id"]


def test_the_tool_in_the_commands_is_the_boot_scripts() -> None:
    for args in (("--status",), ("--version-id", "abc")):
        command = tool_command(ARN, "us-west-2", *args)
        assert password_script(ARN, "us-west-2").rstrip("\n") in command
        assert subprocess.run(["bash", "-n"], input=command, text=True, check=False).returncode == 0
    assert f"exec {PASSWORD_TOOL} --install --version-id abc\n" in tool_command(ARN, "us-west-2",
                                                                                 "--version-id", "abc")
    assert os.path.basename(PASSWORD_TOOL) == "byoc-proton-password"
