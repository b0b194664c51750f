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
step "Starting the local AWS sandbox on 127.0.0.1"
trap '$BYOC sandbox stop --state-dir "$DIR" >/dev/null' EXIT
SANDBOX_ENV=$($BYOC sandbox start --port "$PORT" --state-dir "$DIR")
eval "$SANDBOX_ENV"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

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
