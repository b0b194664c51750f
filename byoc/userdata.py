"""A Proton node's EC2 user data: a cloud-init bash script rendered from ``templates/user_data.sh``.

Pure code (no AWS calls, no output). The script reaches a root shell, so every input is checked
against a strict ASCII pattern in ``NodeConfig.__post_init__`` and substituted shell-quoted into
an assignment at the top of the script; the script body only uses the variables. The CloudWatch
agent's JSON and the YAML files for the agent and Proton are produced here as whole documents and
land in the script inside quoted heredocs, so bash expands nothing in them.

What the script does, and why, is written in the template itself.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

#: where the node mounts its EBS data volume; the container sees it as /var/lib/proton
DATA_MOUNT: Final = "/var/lib/proton-data"

#: the CloudWatch metrics the alarms use: name, and the dimensions besides InstanceId
DISK_METRIC: Final[tuple[str, dict[str, str]]] = ("disk_used_percent", {"path": DATA_MOUNT, "fstype": "xfs"})
MEMORY_METRIC: Final[tuple[str, dict[str, str]]] = ("mem_used_percent", {})

#: Proton's Prometheus metrics kept and sent to CloudWatch (PrometheusMetricsWriter prefixes:
#: ProtonProfileEvents_, ProtonMetrics_, ProtonAsyncMetrics_): query counts and failures, query
#: time, inserted rows/bytes, running queries and merges, memory, and the most parts in one
#: partition. Every name exists in every Proton release v1.3.11..v1.6.1 (tests/test_metrics.py
#: holds the list checked upstream; InsertQueryTimeMicroseconds went in v1.5.2, and no metric is
#: named *Ingest*). Each kept metric is a billed custom metric per node: the selection is narrow.
PROTON_METRIC_SELECTOR: Final = (
    "^Proton(ProfileEvents_((Failed)?(Select|Insert)?Query|(Select)?QueryTimeMicroseconds"
    "|Inserted(Rows|Bytes))|Metrics_(Query|Merge|MemoryTracking)"
    "|AsyncMetrics_(MemoryResident|MaxPartCountForPartition))$"
)

#: ports Proton publishes by default: batch HTTP, streaming HTTP, streaming TCP, batch TCP
DEFAULT_PORTS: Final = (8123, 3218, 8463, 7587)
MAX_PORTS: Final = 16
#: the port the boot health check uses (GET / answers "Ok." without authentication)
HEALTH_PORT: Final = 8123
#: Proton's Prometheus listener: published on the host's loopback only
METRICS_PORT: Final = 9363

#: Proton's built-in users with well-known passwords (proton-facts.md §4): locked by the script.
#: ``default`` is kept (removing it breaks Proton's internal connections) and gets the admin password.
LOCKED_USERS: Final = ("proton", "system", "pgadmin", "neutron")

CLOUDWATCH_AGENT_CONFIG: Final = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
PROMETHEUS_CONFIG: Final = "/opt/aws/amazon-cloudwatch-agent/etc/byoc-prometheus.yaml"
#: per-instance scrape target (it carries the InstanceId label), written by the script at boot
PROMETHEUS_TARGETS: Final = "/opt/aws/amazon-cloudwatch-agent/etc/byoc-prometheus-targets.json"
BOOTSTRAP_LOG: Final = "/var/log/byoc-bootstrap.log"
#: the node-side script that writes the users.d override (boot, per-boot, rotate-password)
PASSWORD_TOOL: Final = "/usr/local/sbin/byoc-proton-password"

#: EC2 refuses user data over 16 KiB (before base64)
MAX_USER_DATA_BYTES: Final = 16 * 1024

_REGION = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]{1,16}-[0-9]{1,2}"
_PATTERNS: Final[Mapping[str, str]] = {
    "cluster": r"[a-z][a-z0-9-]{1,22}[a-z0-9]",
    "region": _REGION,
    "node": r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
    "image": r"(?=.{1,200}\Z)[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*",
    "version": r"latest|[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}(-[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3})?",
    "data_volume_id": r"vol-([0-9a-f]{8}|[0-9a-f]{17})",
    "secret_arn": (
        rf"arn:aws(-[a-z]{{1,10}}){{0,2}}:secretsmanager:{_REGION}:[0-9]{{12}}:secret:[A-Za-z0-9/_+=.@-]{{1,256}}"
    ),
    "log_group": r"[A-Za-z0-9_./#-]{1,128}",
    "metrics_namespace": r"(?!AWS/)[A-Za-z0-9_./#:-]{1,128}",
}
_EXPECTED: Final[Mapping[str, str]] = {
    "cluster": "3-24 lowercase letters, digits and hyphens, starting with a letter",
    "region": "an AWS region name such as us-west-2",
    "node": "a node key of lowercase letters, digits and hyphens, such as 0",
    "image": "a container image name without a tag, such as d.timeplus.com/timeplus-io/proton",
    "version": "an image tag such as 1.6.16 or 3.0.19 (no leading v), or latest",
    "data_volume_id": "an EBS volume id such as vol-0123456789abcdef0",
    "secret_arn": "a Secrets Manager secret ARN in the node's region",
    "log_group": "a CloudWatch Logs group name such as /aws/proton/<cluster>",
    "metrics_namespace": "a CloudWatch namespace such as ProtonCluster/<cluster> (not AWS/...)",
}


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node's user data depends on. Every field is validated on construction."""

    cluster: str  # validated cluster name: ^[a-z][a-z0-9-]{1,22}[a-z0-9]$
    region: str  # e.g. us-west-2
    node: str  # node key, e.g. "0"
    image: str  # e.g. d.timeplus.com/timeplus-io/proton
    version: str  # image tag, e.g. 1.6.16 (no leading v)
    data_volume_id: str  # vol-0123abcd…: the node finds its disk by this id
    secret_arn: str  # Secrets Manager ARN of the admin password (NOT the password)
    log_group: str  # /aws/proton/<cluster>
    metrics_namespace: str  # ProtonCluster/<cluster>
    ports: tuple[int, ...] = DEFAULT_PORTS  # published Proton ports

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "ports":
                continue
            value: object = getattr(self, f.name)
            pattern = _PATTERNS[f.name]
            if not isinstance(value, str) or not re.fullmatch(pattern, value, re.ASCII):
                raise ValueError(f"{f.name}: invalid value {value!r}; expected {_EXPECTED[f.name]}")
        arn_region = self.secret_arn.split(":")[3]
        if arn_region != self.region:
            raise ValueError(
                f"secret_arn: the secret is in {arn_region}, not in the node's region {self.region}"
            )
        object.__setattr__(self, "ports", _checked_ports(self.ports))


def _checked_ports(ports: object) -> tuple[int, ...]:
    if not isinstance(ports, (tuple, list)) or not 1 <= len(ports) <= MAX_PORTS:
        raise ValueError(f"ports: invalid value {ports!r}; expected a tuple of 1-{MAX_PORTS} port numbers")
    for p in ports:
        if type(p) is not int or not 1 <= p <= 65535:
            raise ValueError(f"ports: invalid port {p!r}; expected an integer 1-65535")
        if p == METRICS_PORT:
            raise ValueError(f"ports: {p} is the metrics port; it is published on the host's loopback only")
    if len(set(ports)) != len(ports):
        raise ValueError(f"ports: duplicate port in {ports!r}")
    return tuple(ports)


class _ScriptTemplate(string.Template):
    """``@@name`` placeholders: ``$`` and ``${...}`` stay bash's. Case-sensitive."""

    delimiter = "@@"
    idpattern = r"[a-z][a-z0-9_]*"
    flags = re.ASCII


@functools.cache
def _template(name: str = "user_data.sh") -> _ScriptTemplate:
    text = importlib.resources.files("byoc").joinpath(f"templates/{name}").read_text("utf-8")
    template = _ScriptTemplate(text)
    if not template.is_valid():
        raise RuntimeError(f"templates/{name}: malformed @@ placeholder")
    return template


# --- the documents carried by quoted heredocs --------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: words YAML 1.1 parsers read as booleans or null: never written as plain keys
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"unsupported YAML value {value!r}")
    # a JSON string (ASCII, escaped) is a valid YAML double-quoted scalar
    return str(value) if isinstance(value, int) else json.dumps(value)


def _yaml_key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def _yaml_lines(value: object, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = f"{pad}{_yaml_key(k)}:"
            if isinstance(v, (Mapping, list)) and v:
                lines += [key, *_yaml_lines(v, indent + 2)]
            elif isinstance(v, (Mapping, list)):
                lines.append(f"{key} {'{}' if isinstance(v, Mapping) else '[]'}")
            else:
                lines.append(f"{key} {_yaml_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (Mapping, list)) and item:
                nested = _yaml_lines(item, indent + 2)
                lines += [f"{pad}- {nested[0].lstrip()}", *nested[1:]]
            else:
                lines += [f"{pad}- {_yaml_scalar(item)}"]
    else:
        raise TypeError(f"unsupported YAML document {value!r}")
    return lines


def to_yaml(document: Mapping[str, Any], comment: str = "") -> str:
    """A tiny block-style YAML writer: mappings, lists, ints and strings (all strings quoted)."""
    header = [f"# {line}".rstrip() for line in comment.splitlines()]
    return "\n".join([*header, *_yaml_lines(document, 0)])


def _sha256_token(user: str) -> str:
    """Stands in the users YAML for a hash the script computes at boot (pure [A-Za-z_] text)."""
    return f"__BYOC_SHA256_{user}__"


def users_override() -> dict[str, Any]:
    """The users.d override: ``default`` gets the admin password's hash, the others are locked."""
    remove = {"@remove": "1"}
    users: dict[str, Any] = {"default": {"password": remove, "password_sha256_hex": _sha256_token("default")}}
    for user in LOCKED_USERS:
        users[user] = {
            "password": remove,
            "password_sha256_hex": _sha256_token(user),
            "networks": {"@replace": "1", "ip": ["::1", "127.0.0.1"]},
        }
    return {"users": users}


def config_override() -> dict[str, Any]:
    """The config.d override: server log on the console (as Proton's Helm chart does), metrics on."""
    return {
        "logger": {"console": 1, "log": "", "errorlog": ""},
        "prometheus": {"endpoint": "/metrics", "port": METRICS_PORT},
    }


def prometheus_config() -> dict[str, Any]:
    """The CloudWatch agent's Prometheus scrape config (targets come from PROMETHEUS_TARGETS)."""
    return {
        "global": {"scrape_interval": "1m", "scrape_timeout": "10s"},
        "scrape_configs": [
            {
                "job_name": "proton",
                "metrics_path": "/metrics",
                "sample_limit": 10000,
                "file_sd_configs": [{"files": [PROMETHEUS_TARGETS]}],
                # keep only what is sent on: everything scraped also lands in the log group
                "metric_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": PROTON_METRIC_SELECTOR, "action": "keep"}
                ],
            }
        ],
    }


def cloudwatch_agent_config(cfg: NodeConfig) -> dict[str, Any]:
    """The CloudWatch agent's configuration (JSON). ``${aws:InstanceId}`` is the agent's, literal."""
    return {
        "agent": {"metrics_collection_interval": 60, "omit_hostname": True, "region": cfg.region},
        "metrics": {
            "namespace": cfg.metrics_namespace,
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "metrics_collected": {
                # DISK_METRIC: disk_used_percent by path and fstype (drop_device), InstanceId appended
                "disk": {"measurement": ["used_percent"], "resources": [DATA_MOUNT], "drop_device": True},
                # MEMORY_METRIC: mem_used_percent, InstanceId only
                "mem": {"measurement": ["used_percent"]},
            },
        },
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": BOOTSTRAP_LOG,
                            "log_group_name": cfg.log_group,
                            "log_stream_name": "{instance_id}/bootstrap",
                        }
                    ]
                }
            },
            "metrics_collected": {
                "prometheus": {
                    "log_group_name": cfg.log_group,
                    "prometheus_config_path": PROMETHEUS_CONFIG,
                    "emf_processor": {
                        "metric_declaration_dedup": True,
                        "metric_namespace": cfg.metrics_namespace,
                        "metric_declaration": [
                            {
                                "source_labels": ["job"],
                                "label_matcher": "^proton$",
                                "dimensions": [["InstanceId"]],
                                "metric_selectors": [PROTON_METRIC_SELECTOR],
                            }
                        ],
                    },
                }
            },
        },
    }


_USERS_COMMENT = f"Managed by byoc: {PASSWORD_TOOL}"


def _heredoc_body(name: str, text: str) -> str:
    """``text`` as the body of the heredoc ``name``; refuses text that would end it early."""
    if name in text.splitlines() or "\0" in text:
        raise RuntimeError(f"heredoc {name}: content would end the heredoc")
    return text


# --- rendering ----------------------------------------------------------------------------------


def _assignment_values(cfg: NodeConfig) -> dict[str, str]:
    q = shlex.quote
    return {
        "cluster": q(cfg.cluster),
        "region": q(cfg.region),
        "node": q(cfg.node),
        "image": q(cfg.image),
        "version": q(cfg.version),
        "data_volume_id": q(cfg.data_volume_id),
        "log_group": q(cfg.log_group),
        "metrics_namespace": q(cfg.metrics_namespace),
        "ports": " ".join(str(int(p)) for p in cfg.ports),
        "data_mount": q(DATA_MOUNT),
        "bootstrap_log": q(BOOTSTRAP_LOG),
        "cloudwatch_agent_config": q(CLOUDWATCH_AGENT_CONFIG),
        "prometheus_config": q(PROMETHEUS_CONFIG),
        "prometheus_targets": q(PROMETHEUS_TARGETS),
    }


def _documents(cfg: NodeConfig) -> dict[str, str]:
    return {
        "cloudwatch_agent_json": _heredoc_body(
            "BYOC_CLOUDWATCH_AGENT_JSON", json.dumps(cloudwatch_agent_config(cfg), separators=(",", ":"))
        ),
        "prometheus_yaml": _heredoc_body("BYOC_PROMETHEUS_YAML", to_yaml(prometheus_config())),
        "password_script": _heredoc_body(
            "BYOC_PASSWORD_SCRIPT", password_script(cfg.secret_arn, cfg.region).rstrip("\n")
        ),
        "config_yaml": _heredoc_body(
            "BYOC_CONFIG_YAML",
            to_yaml(config_override(), "Managed by byoc: the boot script"),
        ),
    }


def password_script(secret_arn: str, region: str) -> str:
    """The node-side ``byoc-proton-password`` (templates/proton_password.sh): it sets ``default``'s
    password in the users.d override from the secret and checks that it logs in. The boot script
    installs it; ``byoc rotate-password`` sends it inline, so nodes booted before it work too."""
    for name, value in (("secret_arn", secret_arn), ("region", region)):
        if not isinstance(value, str) or not re.fullmatch(_PATTERNS[name], value, re.ASCII):
            raise ValueError(f"{name}: invalid value {value!r}; expected {_EXPECTED[name]}")
    values = {
        "secret_arn": shlex.quote(secret_arn),
        "region": shlex.quote(region),
        "locked_users": " ".join(shlex.quote(u) for u in LOCKED_USERS),
        "users_yaml": _heredoc_body("BYOC_USERS_YAML", to_yaml(users_override(), _USERS_COMMENT)),
    }
    return _substitute(_template("proton_password.sh"), "proton_password.sh", values)


def tool_command(secret_arn: str, region: str, *args: str) -> str:
    """The SSM command that runs the node-side script with ``args``. ``--status`` runs it from the
    command itself and leaves the node as it was; otherwise the script is installed first (with its
    per-boot hook: ``--install``), so a node booted by an older byoc gets both."""
    tool = password_script(secret_arn, region).rstrip("\n")
    quoted = " ".join(shlex.quote(a) for a in args)
    if args == ("--status",):
        return "\n".join(["#!/bin/bash", "bash -s -- --status <<'BYOC_PASSWORD_SCRIPT'", tool,
                          "BYOC_PASSWORD_SCRIPT"]) + "\n"
    return "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        "umask 077",
        f"cat >{PASSWORD_TOOL}.new <<'BYOC_PASSWORD_SCRIPT'",
        tool,
        "BYOC_PASSWORD_SCRIPT",
        f"chmod 0700 {PASSWORD_TOOL}.new",
        f"mv -f {PASSWORD_TOOL}.new {PASSWORD_TOOL}",
        f"exec {PASSWORD_TOOL} --install {quoted}",
    ]) + "\n"


def _substitute(template: _ScriptTemplate, name: str, values: Mapping[str, str]) -> str:
    wanted = set(template.get_identifiers())
    if wanted != set(values):
        missing, unused = sorted(wanted - set(values)), sorted(set(values) - wanted)
        raise RuntimeError(f"templates/{name}: placeholders without values {missing}, unused {unused}")
    return template.substitute(values)


def render_user_data(cfg: NodeConfig) -> str:
    """The node's whole user data script; equal configs give byte-identical scripts."""
    script = _substitute(_template(), "user_data.sh", {**_assignment_values(cfg), **_documents(cfg)})
    size = len(script.encode("utf-8"))
    if size > MAX_USER_DATA_BYTES:
        raise RuntimeError(f"user data is {size} bytes; EC2 allows {MAX_USER_DATA_BYTES}")
    return script
