#!/usr/bin/env bash
# Security scan of the tree; exits non-zero on any finding. .ci/run runs it.
#   1. bandit on python/ (all severities)
#   2. a secret scan (detect-secrets) of every tracked file
#   3. shellcheck on every tracked shell script
#   4. no credential-like literal (password/secret/token/api key = "...") in tracked files
set -euo pipefail
cd "$(dirname "$0")" || exit 1

python3 -m pip install -q 'bandit>=1.7' 'detect-secrets>=1.4'
if ! command -v shellcheck >/dev/null; then
  apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null
fi
status=0

echo "-- bandit"
python3 -m bandit -q -r python || status=1

echo "-- detect-secrets"
mapfile -t files < <(git ls-files)
report=$(mktemp)
python3 -m detect_secrets scan "${files[@]}" >"$report"
found=$(python3 - "$report" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for name, hits in results.items():
    for hit in hits:
        # Benchmark baselines are pytest-benchmark records: their git commit ids are
        # high-entropy hex by nature. Every other detector still applies to them.
        if name.startswith("bench/baselines/") and hit["type"] == "Hex High Entropy String":
            continue
        print(f"{name}:{hit['line_number']}: {hit['type']}")
PY
)
rm -f "$report"
if [ -n "$found" ]; then
  echo "$found"
  status=1
fi

echo "-- shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck "${scripts[@]}" || status=1

echo "-- credential-like literals"
pattern="(password|passwd|secret|api_key|apikey|token)[[:space:]]*[:=][[:space:]]*['\"][^'\"\$\{]{6,}['\"]"
if git ls-files -z | xargs -0 grep -nIiE "$pattern" -- 2>/dev/null; then
  echo "credential-like literal found (secrets come from the environment or a 0600 file)"
  status=1
fi

[ "$status" -eq 0 ] && echo "security scan: no findings"
exit "$status"
