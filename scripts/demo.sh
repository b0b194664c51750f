#!/usr/bin/env bash
# The README's demo: the whole life of specs/dev.yaml against the local AWS sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

BYOC=".venv/bin/byoc"
SPEC="specs/dev.yaml"
DIR="state/demo"            # sandbox pid and the demo's own state, kept apart from real state
PORT="${BYOC_SANDBOX_PORT:-4566}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

rm -rf "$DIR"
step "Starting the local AWS sandbox on 127.0.0.1:$PORT"
eval "$($BYOC sandbox start --port "$PORT" --state-dir "$DIR")"
trap '$BYOC sandbox stop --state-dir "$DIR" >/dev/null' EXIT
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

step "byoc destroy $SPEC --auto-approve"
$BYOC destroy "$SPEC" "${SET[@]}" --auto-approve

step "byoc plan $SPEC   (after destroy: everything would be created again)"
$BYOC plan "$SPEC" "${SET[@]}" | tail -n 1

step "Demo complete."
