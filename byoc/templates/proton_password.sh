#!/bin/bash
# byoc-proton-password (byoc/userdata.py): the users.d override: default gets the admin password
# (as sha256), other built-in users are locked. [--version-id ID] [--boot] [--no-verify] [--install]
# writes it (undone if the password does not log in: exit 3 refused, 4 no answer); --status
# NOTE: users.d semantics (@remove, @replace) inferred from the code of Proton 1.6: verify on 3.x
set -Eeuo pipefail +x
umask 077
SECRET_ARN=@@secret_arn
REGION=@@region
LOCKED_USERS=(@@locked_users)
TOOL=/usr/local/sbin/byoc-proton-password
FILE=/etc/byoc/proton/users.d/zz-byoc-users.yaml
KEEP=/etc/byoc/proton/zz-byoc-users.yaml.previous
HOOK=/var/lib/cloud/scripts/per-boot/byoc-proton-password
say() { printf 'byoc-proton-password: %s\n' "$*"; }
die() { say "ERROR: $2" >&2; exit "$1"; }

version=() boot=0 verify=1 status=0
while (($#)); do
  case $1 in
    --version-id) version=(--version-id "$2"); shift ;;
    --boot) boot=1 ;;
    --no-verify) verify=0 ;;
    --status) status=1 ;;
    --install) mkdir -p "${HOOK%/*}"
      printf '#!/bin/bash\nexec %s --boot >>/var/log/byoc-bootstrap.log 2>&1\n' "$TOOL" >"$HOOK"
      chmod 0700 "$HOOK" ;;
    *) die 2 "unknown argument $1" ;;
  esac
  shift
done
command -v aws >/dev/null || dnf install -y awscli-2 >/dev/null || die 5 "no AWS CLI"

# only $secret holds the password; at boot, retried (credentials can lag)
secret=""
read_secret() {
  local n tries=$((boot ? 8 : 1))
  for ((n = 1; n <= tries; n++)); do
    if secret=$(AWS_PAGER="" aws secretsmanager get-secret-value --secret-id "$SECRET_ARN" --region "$REGION" \
      "$@" --query SecretString --output text) && [[ -n "$secret" && "$secret" != None ]]; then return 0; fi
    if ((n < tries)); then sleep $((n * 5)); fi
  done
  return 1
}
sha() { printf '%s' "$secret" | sha256sum | cut -d' ' -f1; }
held() { grep -m1 -o '[0-9a-f]\{64\}' "$FILE" 2>/dev/null; } # default's hash comes first

if ((status)); then
  have=$(held) || { echo none; exit 0; }
  for stage in AWSCURRENT AWSPREVIOUS; do
    if read_secret --version-stage "$stage" 2>/dev/null && [[ "$(sha)" == "$have" ]]; then echo "$stage"; exit 0; fi
  done
  echo other
  exit 0
fi
read_secret "${version[@]}" || die 5 "cannot read the admin password from Secrets Manager"
new=$(sha)
if [[ "$new" == "$(held || true)" ]]; then say "unchanged"; exit 0; fi
yaml=$(
  cat <<'BYOC_USERS_YAML'
@@users_yaml
BYOC_USERS_YAML
)
yaml=${yaml//__BYOC_SHA256_default__/$new}
for user in "${LOCKED_USERS[@]}"; do # a random password nobody knows
  yaml=${yaml//__BYOC_SHA256_${user}__/$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)}
done
[[ "$yaml" != *__BYOC_SHA256_* ]] || die 1 "the users override is incomplete"

# put TMP: a rename, or in place if the container mounts the file itself (older nodes)
put() {
  chown 101:101 "$1" && chmod 0600 "$1"
  if docker inspect -f '{{range .Mounts}}{{println .Destination}}{{end}}' proton 2>/dev/null |
    grep -qx /etc/proton-server/users.d/zz-byoc-users.yaml; then
    cat "$1" >"$FILE" && rm -f "$1"
  else mv -f "$1" "$FILE"; fi
}
restore() {
  [[ -f "$KEEP" ]] || return 0
  tmp=$(mktemp "$FILE.XXXXXX") && cp "$KEEP" "$tmp" && put "$tmp" && say "previous override restored"
}
install -d -m 0700 -o 101 -g 101 "${FILE%/*}"
if [[ -f "$FILE" ]]; then cp -p "$FILE" "$KEEP"; fi
tmp=$(mktemp "$FILE.XXXXXX")
printf '%s\n' "$yaml" >"$tmp"
put "$tmp"
say "users.d override written"
((verify)) || exit 0

secret=${secret//\\/\\\\}
secret=${secret//\"/\\\"}
body=$(mktemp) code=000
for ((n = 0; n < (boot ? 150 : 30); n++)); do
  code=$(printf 'user = "default:%s"\n' "$secret" | curl -sS -K - -o "$body" -w '%{http_code}' \
    --max-time 10 --data-binary 'SELECT 1' http://127.0.0.1:8123/ 2>/dev/null) || code=000
  if [[ "$code" == 200 ]]; then say "the new password logs in"; exit 0; fi
  sleep 2
done
unset secret
if [[ "$code" == 000 ]]; then
  ((boot)) || restore
  die 4 "Proton does not answer on 127.0.0.1:8123"
fi
restore
die 3 "Proton refuses the new password (HTTP $code: $(head -c 1000 "$body" | tr '\n' ' '))"
