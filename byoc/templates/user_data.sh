#!/bin/bash
# byoc: bootstrap of a Timeplus Proton node (Amazon Linux 2023), rendered by byoc/userdata.py.
# Values are substituted shell-quoted into the assignments below. Every step is idempotent.
set -Eeuo pipefail
umask 022

CLUSTER=@@cluster
NODE=@@node
REGION=@@region
IMAGE=@@image
VERSION=@@version
VOLUME_ID=@@data_volume_id
LOG_GROUP=@@log_group
METRICS_NAMESPACE=@@metrics_namespace
PORTS=(@@ports)
DATA_MOUNT=@@data_mount
BOOTSTRAP_LOG=@@bootstrap_log
CWA_CONFIG=@@cloudwatch_agent_config
PROM_CONFIG=@@prometheus_config
PROM_TARGETS=@@prometheus_targets

CONF_DIR=/etc/byoc/proton
PASSWORD_TOOL=/usr/local/sbin/byoc-proton-password
CONFIG_FILE="$CONF_DIR/config.d/zz-byoc.yaml"

touch "$BOOTSTRAP_LOG"
chmod 0600 "$BOOTSTRAP_LOG"
exec > >(tee -a "$BOOTSTRAP_LOG") 2>&1

log() { printf '%s byoc-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: failed at line $LINENO"' ERR

# retry ATTEMPTS DELAY COMMAND...
retry() {
  local attempts=$1 delay=$2 n=1
  shift 2
  until "$@"; do
    if ((n >= attempts)); then return 1; fi
    n=$((n + 1))
    sleep "$delay"
  done
}

log "start: cluster=$CLUSTER node=$NODE region=$REGION image=$IMAGE:$VERSION volume=$VOLUME_ID"
log "logs: $LOG_GROUP, metrics: $METRICS_NAMESPACE, ports: ${PORTS[*]}"

# --- 1. instance id, with an IMDSv2 token
imds_token() {
  curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' --max-time 5
}
imds_get() {
  local token
  token=$(imds_token) || return 1
  curl -sf -H "X-aws-ec2-metadata-token: $token" --max-time 5 "http://169.254.169.254/latest/meta-data/$1"
}
INSTANCE_ID=$(retry 30 2 imds_get instance-id) || die "cannot read the instance id from IMDS"
[[ "$INSTANCE_ID" =~ ^i-[0-9a-f]{8,17}$ ]] || die "unexpected instance id from IMDS"
log "instance $INSTANCE_ID"

# --- 2. the data volume, found by its volume id
# Nitro: an NVMe device whose serial is the volume id without the dash. Xen: /dev/sdf or /dev/xvdf.
VOLUME_SERIAL="${VOLUME_ID/-/}"
find_data_device() {
  local link="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$VOLUME_SERIAL" sys serial dev
  if [[ -b "$link" ]]; then readlink -f "$link"; return 0; fi
  for sys in /sys/block/nvme*n1; do
    [[ -r "$sys/device/serial" ]] || continue
    serial=$(tr -d '[:space:]' <"$sys/device/serial")
    if [[ "$serial" == "$VOLUME_SERIAL" ]]; then printf '/dev/%s\n' "${sys##*/}"; return 0; fi
  done
  if ! compgen -G '/sys/block/nvme*' >/dev/null; then
    for dev in /dev/xvdf /dev/sdf; do
      if [[ -b "$dev" ]]; then readlink -f "$dev"; return 0; fi
    done
  fi
  return 1
}
deadline=$((SECONDS + 600))
until DEVICE=$(find_data_device); do
  ((SECONDS < deadline)) || die "data volume $VOLUME_ID is not attached after 10 minutes"
  sleep 5
  udevadm settle --timeout=10 || true
done
log "data volume $VOLUME_ID is $DEVICE"

# --- 3. filesystem (only on a blank volume), fstab by UUID, mount, ownership
# A replaced instance gets the old volume back: never format a device with any signature.
FRESH=0
if probe=$(blkid -p -o export "$DEVICE"); then
  FSTYPE=$(sed -n 's/^TYPE=//p' <<<"$probe")
  [[ -n "$FSTYPE" ]] || die "$DEVICE has a partition table or unknown content; not touching it"
  log "$DEVICE already has a $FSTYPE filesystem; keeping its data"
else
  rc=$?
  ((rc == 2)) || die "blkid failed on $DEVICE (exit $rc)"
  dd if="$DEVICE" of=/dev/null bs=4096 count=1 status=none || die "$DEVICE is not readable"
  log "$DEVICE is blank: creating an XFS filesystem"
  mkfs.xfs -L proton-data "$DEVICE"  # no -f: mkfs.xfs itself refuses a device with a signature
  FSTYPE=xfs
  FRESH=1
fi
udevadm settle --timeout=10 || true
UUID=$(blkid -p -o value -s UUID "$DEVICE")
[[ -n "$UUID" ]] || die "no filesystem UUID on $DEVICE"

FSTAB_LINE="UUID=$UUID $DATA_MOUNT $FSTYPE defaults,nofail,noatime 0 2"
if ! grep -qxF "$FSTAB_LINE" /etc/fstab; then
  awk -v mp="$DATA_MOUNT" '$2 != mp' /etc/fstab >/etc/fstab.byoc
  printf '%s\n' "$FSTAB_LINE" >>/etc/fstab.byoc
  cat /etc/fstab.byoc >/etc/fstab
  rm -f /etc/fstab.byoc
  systemctl daemon-reload
fi
mkdir -p "$DATA_MOUNT"
if ! mountpoint -q "$DATA_MOUNT"; then
  # the bare mount point is immutable: nothing lands on the root disk by mistake
  chattr +i "$DATA_MOUNT" || log "warning: cannot make $DATA_MOUNT immutable"
  mount "$DATA_MOUNT"
fi
[[ "$(findmnt -n -o SOURCE --target "$DATA_MOUNT")" == "$DEVICE" ]] || die "$DATA_MOUNT is not $DEVICE"
# Proton runs as uid/gid 101 (3.x images no longer chown their data directory)
chown 101:101 "$DATA_MOUNT"
if ((FRESH)); then chown -R 101:101 "$DATA_MOUNT"; fi
log "$DEVICE mounted at $DATA_MOUNT"

# --- 4. Docker, started only once the data volume is mounted
retry 5 10 dnf install -y docker
mkdir -p /etc/systemd/system/docker.service.d
printf '[Unit]\nRequiresMountsFor=%s\n' "$DATA_MOUNT" >/etc/systemd/system/docker.service.d/byoc-data.conf
systemctl daemon-reload
systemctl enable --now docker
retry 30 2 docker info >/dev/null || die "docker does not start"

# --- 5. CloudWatch agent: data-volume disk and memory use, Proton's Prometheus metrics
# Monitoring must not keep Proton down: a failure is logged and the boot goes on.
retry 5 10 dnf install -y amazon-cloudwatch-agent || log "WARNING: cannot install the CloudWatch agent"
mkdir -p "$(dirname "$CWA_CONFIG")"
cat >"$PROM_CONFIG" <<'BYOC_PROMETHEUS_YAML'
@@prometheus_yaml
BYOC_PROMETHEUS_YAML
printf '[{"targets": ["127.0.0.1:9363"], "labels": {"InstanceId": "%s"}}]\n' "$INSTANCE_ID" >"$PROM_TARGETS"
cat >"$CWA_CONFIG" <<'BYOC_CLOUDWATCH_AGENT_JSON'
@@cloudwatch_agent_json
BYOC_CLOUDWATCH_AGENT_JSON
if /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c "file:$CWA_CONFIG"; then
  log "CloudWatch agent configured"
else
  log "WARNING: the CloudWatch agent did not start: no metrics from this node"
fi

# --- 6. users (byoc-proton-password): now, at every later boot (per-boot hook), rotate-password
cat >"$PASSWORD_TOOL" <<'BYOC_PASSWORD_SCRIPT'
@@password_script
BYOC_PASSWORD_SCRIPT
chmod 0700 "$PASSWORD_TOOL"
"$PASSWORD_TOOL" --install --boot --no-verify || die "cannot set the admin password (see above)"

# --- 7. config: server log on the console (docker logs, awslogs), Prometheus on
install -d -m 0755 "$CONF_DIR/config.d"
tmp=$(mktemp "$CONFIG_FILE.XXXXXX")
cat >"$tmp" <<'BYOC_CONFIG_YAML'
@@config_yaml
BYOC_CONFIG_YAML
chmod 0644 "$tmp"
mv -f "$tmp" "$CONFIG_FILE"

# --- 8. the Proton container (replaced if it exists)
publish=()
for port in "${PORTS[@]}"; do publish+=(-p "$port:$port"); done
# the health check below needs 8123: on the loopback if not published
if [[ " ${PORTS[*]} " != *" 8123 "* ]]; then publish+=(-p 127.0.0.1:8123:8123); fi
retry 10 15 docker pull --quiet "$IMAGE:$VERSION" || die "cannot pull $IMAGE:$VERSION"
if docker container inspect proton >/dev/null 2>&1; then
  log "replacing the existing proton container"
  docker rm -f proton >/dev/null
fi
docker run -d --name proton --restart unless-stopped \
  --ulimit nofile=1048576:1048576 \
  "${publish[@]}" \
  -p 127.0.0.1:9363:9363 \
  -v "$DATA_MOUNT:/var/lib/proton" \
  -v "$CONF_DIR/users.d:/etc/proton-server/users.d:ro" \
  -v "$CONFIG_FILE:/etc/proton-server/config.d/zz-byoc.yaml:ro" \
  -e TELEMETRY_ENABLED=false \
  --label "byoc.cluster=$CLUSTER" --label "byoc.node=$NODE" \
  --log-driver awslogs \
  --log-opt "awslogs-region=$REGION" \
  --log-opt "awslogs-group=$LOG_GROUP" \
  --log-opt "awslogs-stream=$INSTANCE_ID" \
  --log-opt mode=non-blocking --log-opt max-buffer-size=16m \
  "$IMAGE:$VERSION" >/dev/null
log "proton container started"

# --- 9. wait for Proton: GET / answers "Ok." without auth (no ping route in 1.5.9+)
deadline=$((SECONDS + 300))
until curl -fsS --max-time 5 http://127.0.0.1:8123/ >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    log "warning: proton does not answer on port 8123 after 5 minutes (see docker logs proton)"
    exit 0
  fi
  sleep 5
done
log "done: proton answers on port 8123"
