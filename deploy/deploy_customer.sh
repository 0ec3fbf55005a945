#!/usr/bin/env bash
# Deploy Predis for one customer on Docker (compose), Kubernetes or AWS (CloudFormation).
#
#   deploy_customer.sh --platform docker|kubernetes|aws --customer-id ID [OPTIONS] [--dry-run]
#
# Every input is validated (by predis.security's validators, through deploy_helper.py)
# before anything is written. The script generates, once, into 0600 files under
# OUTPUT/secrets/: the exporter's scrape token (metrics-token), the Grafana admin password
# (docker, aws) and the customer's first API token (customer-token, made with
# `predis token create`; the salted-hash store is tokens.json). It renders the platform's
# files into OUTPUT/<platform>/ and applies them unless --dry-run. Running it again keeps
# the secrets and re-renders the same files, so it is safe to repeat. No secret is printed.
#
# Options (defaults in brackets):
#   --output-dir DIR         under $PREDIS_DEPLOY_ROOT [./predis-deployments]; [CUSTOMER-ID]
#   --image REF              runtime image [predis/runtime:0.1.0]
#   --exporter-image REF     exporter image [predis/exporter:0.1.0]
#   --cache-bytes SIZE       host app cache capacity, e.g. 256MiB [256MiB]
#   --token-scopes LIST      scopes of the customer's first token [read]
#   --gpu                    give the host app the GPUs (docker; always on for aws)
#   --bind-address IP        docker/aws: address the published ports bind [127.0.0.1]
#   --exporter-port N, --prometheus-port N, --grafana-port N     [9100, 9090, 3000]
#   --namespace NS           kubernetes [predis-CUSTOMER-ID]
#   --app-memory SIZE, --gpus N                      kubernetes [cache + 1GiB, 0]
#   --prometheus-namespace NS, --prometheus-release NAME   [monitoring, kube-prometheus-stack]
#   --region R --vpc-id ID --subnet-id ID --bucket NAME [--instance-type T]   aws (required)
#   --dry-run                validate, make the secrets and render; apply nothing
# CUSTOMER_ID in the environment stands in for --customer-id.
set -euo pipefail
umask 077

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PREDIS_PYTHON:-python3}

die() {
  echo "deploy_customer.sh: error: $*" >&2
  exit 2
}

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
  esac
done

command -v "$python" >/dev/null || die "python3 not found (set PREDIS_PYTHON)"
"$python" -c 'import predis' 2>/dev/null || die "the predis package is not importable by $python"

# Validate everything first; the helper prints KEY=VALUE lines of validated values only.
checked=$("$python" "$here/deploy_helper.py" check "$@") || exit 2
declare -A cfg=()
while IFS='=' read -r key value; do
  cfg[$key]=$value
done <<<"$checked"

platform=${cfg[platform]}
customer=${cfg[customer_id]}
out=${cfg[output_dir]}
secrets="$out/secrets"

if [ "${cfg[warn_exposed]:-0}" = 1 ]; then
  echo "deploy_customer.sh: warning: ports will bind ${cfg[bind_address]}, beyond this host's loopback" >&2
fi

# A folder of ours: made with mode 0700, and refused if it is a symbolic link.
make_private_dir() {
  if [ -L "$1" ]; then die "$1 is a symbolic link; refusing to use it"; fi
  mkdir -p "$1"
  chmod 0700 "$1"
}

# An existing secret file must be a regular file of mode 0600 (never a link), else we stop.
check_secret_file() {
  [ -L "$1" ] && die "$1 is a symbolic link; refusing to use it"
  [ -f "$1" ] || die "$1 is not a regular file"
  local mode
  mode=$(stat -c '%a' "$1")
  [ "$mode" = 600 ] || die "$1 has mode $mode; it must be 600 (chmod 600 it)"
}

# Write a new random secret to $1 atomically (temporary file in the same folder, rename);
# an existing one is kept, so running again does not rotate it.
generate_secret() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    check_secret_file "$1"
    return 0
  fi
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  "$python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$1"
  echo "generated ${1#"$out/"} (mode 0600)"
}

# The customer's first token, from `predis token create`, into customer-token; the store
# (salted hashes only) is tokens.json beside it.
create_customer_token() {
  local file="$secrets/customer-token" store="$secrets/tokens.json" tmp errors
  if [ -e "$file" ] || [ -L "$file" ]; then
    check_secret_file "$file"
    return 0
  fi
  tmp=$(mktemp "$file.XXXXXX")
  errors=$(mktemp "$secrets/.token-errors.XXXXXX")
  if ! PREDIS_TOKEN_FILE=$store "$python" -m predis.cli token create --customer "$customer" \
    --scopes "${cfg[token_scopes]}" >"$tmp" 2>"$errors"; then
    rm -f "$tmp"
    cat "$errors" >&2
    rm -f "$errors"
    die "predis token create failed"
  fi
  rm -f "$errors"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$file"
  echo "generated secrets/customer-token for $customer (scopes ${cfg[token_scopes]}; mode 0600)"
}

make_private_dir "$out"
make_private_dir "$secrets"
generate_secret "$secrets/metrics-token"
if [ "$platform" != kubernetes ]; then
  generate_secret "$secrets/grafana-admin-password"
fi
create_customer_token

rendered=$("$python" "$here/deploy_helper.py" render "$@") || exit 2
echo "rendered $platform files into $rendered"

if [ "${cfg[dry_run]}" = 1 ]; then
  echo "dry run: nothing applied"
  exit 0
fi

need() { command -v "$1" >/dev/null || die "$1 is needed to apply; install it or use --dry-run"; }

case "$platform" in
  docker)
    need docker
    # The secrets reach compose through its environment only, never its arguments.
    (
      cd "$rendered"
      PREDIS_METRICS_TOKEN=$(<"$secrets/metrics-token") \
        PREDIS_GRAFANA_ADMIN_PASSWORD=$(<"$secrets/grafana-admin-password") \
        docker compose up -d --build
    )
    echo "Grafana: http://${cfg[bind_address]}:${cfg[grafana_port]} (user admin; password in $secrets/grafana-admin-password)"
    ;;
  kubernetes)
    need kubectl
    kubectl apply -f "$rendered/namespace.yaml"
    kubectl apply -f "$rendered"
    kubectl -n "${cfg[namespace]}" rollout status deployment/predis --timeout=300s
    ;;
  aws)
    need aws
    region=${cfg[region]}
    for name in metrics-token grafana-admin-password; do
      id="predis/$customer/$name"
      # file:// keeps the value off the command line (and out of the process table).
      if aws secretsmanager describe-secret --region "$region" --secret-id "$id" >/dev/null 2>&1; then
        aws secretsmanager put-secret-value --region "$region" --secret-id "$id" \
          --secret-string "file://$secrets/$name" >/dev/null
      else
        aws secretsmanager create-secret --region "$region" --name "$id" \
          --secret-string "file://$secrets/$name" >/dev/null
      fi
    done
    aws s3 cp --region "$region" --only-show-errors "$rendered/bundle.tar.gz" \
      "s3://${cfg[bucket]}/${cfg[bundle_key]}"
    mapfile -t overrides < <("$python" -c '
import json, sys
for k, v in sorted(json.load(open(sys.argv[1])).items()):
    print(f"{k}={v}")' "$rendered/parameters.json")
    aws cloudformation deploy --region "$region" --stack-name "${cfg[stack_name]}" \
      --template-file "$rendered/predis-gpu.yaml" --capabilities CAPABILITY_IAM \
      --no-fail-on-empty-changeset --parameter-overrides "${overrides[@]}"
    ;;
esac
echo "deployed $customer on $platform"
