#!/usr/bin/env bash
# The README's demo: the whole life of specs/dev.yaml against the local AWS sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

BYOC=".venv/bin/byoc"
SPEC="specs/dev.yaml"
DIR="state/demo"            # sandbox pid and the demo's own state, kept apart from real state
PORT="${BYOC_SANDBOX_PORT:-0}"   # 0: any free port

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

rm -rf "$DIR"
step "Starting the local AWS sandbox on 127.0.0.1 (HTTPS, with a certificate it generates)"
trap '$BYOC sandbox stop --state-dir "$DIR" >/dev/null' EXIT
SANDBOX_ENV=$($BYOC sandbox start --port "$PORT" --state-dir "$DIR")
eval "$SANDBOX_ENV"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
echo "AWS_CA_BUNDLE=$AWS_CA_BUNDLE"

SET=(--set "state.path=$DIR")

step "byoc validate $SPEC"
$BYOC validate "$SPEC" "${SET[@]}"

step "byoc plan $SPEC"
$BYOC plan "$SPEC" "${SET[@]}"

step "byoc apply $SPEC --auto-approve"
$BYOC apply "$SPEC" "${SET[@]}" --auto-approve

step "byoc plan $SPEC --detailed-exitcode   (must show no changes: exit 0)"
$BYOC plan "$SPEC" "${SET[@]}" --detailed-exitcode

step "byoc health $SPEC   (per node: EC2 checks and target health; exit 0 healthy)"
$BYOC health "$SPEC" "${SET[@]}"

step "byoc drift $SPEC   (nothing changed outside byoc: exit 0)"
$BYOC drift "$SPEC" "${SET[@]}"

step "byoc backup $SPEC   (each node's data filesystem frozen through SSM while its snapshot starts)"
echo "(In the sandbox no node runs SSM commands: its SSM answers every freeze and thaw \"Success\","
echo " so \"application-consistent\" below is what SSM reported, not a filesystem really frozen.)"
$BYOC backup "$SPEC" "${SET[@]}"

step "byoc backups list $SPEC"
$BYOC backups list "$SPEC" "${SET[@]}"
BACKUP_ID=$($BYOC backups list "$SPEC" "${SET[@]}" --json \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[-1]["backup_id"])')

step "byoc restore $SPEC $BACKUP_ID --auto-approve   (data volumes replaced from the snapshots)"
$BYOC restore "$SPEC" "$BACKUP_ID" "${SET[@]}" --auto-approve

step "byoc plan $SPEC --detailed-exitcode   (after the restore, nothing left to change: exit 0)"
$BYOC plan "$SPEC" "${SET[@]}" --detailed-exitcode

step "byoc backups prune $SPEC --auto-approve   (only backups past storage.backups.retention_days, or interrupted ones)"
$BYOC backups prune "$SPEC" "${SET[@]}" --auto-approve

# scale edits compute.instance_count in the spec file it is given: use a copy
cp "$SPEC" "$DIR/scaled.yaml"
step "byoc scale $DIR/scaled.yaml --count 2 --auto-approve   (a second node, in the next AZ)"
$BYOC scale "$DIR/scaled.yaml" "${SET[@]}" --count 2 --auto-approve

step "byoc scale $DIR/scaled.yaml --count 1 --auto-approve   (node 1 drains; its volume gets a final snapshot)"
$BYOC scale "$DIR/scaled.yaml" "${SET[@]}" --count 1 --auto-approve

step "byoc destroy $SPEC --auto-approve   (keeps what holds data: the bucket and the data volume)"
$BYOC destroy "$SPEC" "${SET[@]}" --auto-approve

step "byoc destroy $SPEC --auto-approve --include-data   (now the data too)"
$BYOC destroy "$SPEC" "${SET[@]}" --auto-approve --include-data

step "Demo complete."
