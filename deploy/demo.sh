#!/usr/bin/env bash
# Plays GitHub against the local stack (deploy/compose.yaml): takes a
# realistic workflow_run "completed" payload for a simulated run from the
# GitHub simulator, signs it with the webhook secret, POSTs it to the
# webhook, then waits until the worker reports the run archived.
#
#   deploy/demo.sh [RUN_ID]     # default 30433642 (see compose/ghsim-scenario.json)
#
# Needs curl and openssl on the host. Ports as published by compose.yaml.
set -euo pipefail

RUN_ID=${1:-30433642}
OWNER=${OWNER:-octo-org}
REPO=${REPO:-octo-repo}
INSTALLATION_ID=${INSTALLATION_ID:-7}
GHSIM=${GHSIM:-http://127.0.0.1:8081}
WEBHOOK=${WEBHOOK:-http://127.0.0.1:8080}
WORKER_METRICS=${WORKER_METRICS:-http://127.0.0.1:9090}
TIMEOUT=${TIMEOUT:-180}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECRET=${SECRET:-$(head -n1 "$here/compose/webhook-secret.txt")}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# completed_runs prints the worker's archiver_runs_total{outcome="complete"}.
completed_runs() {
	curl -fsS "$WORKER_METRICS/metrics" 2>/dev/null |
		awk '/^archiver_runs_total\{outcome="complete"\}/ {print $2; found=1} END {if (!found) print 0}'
}

echo "waiting for the webhook and the worker to be ready..."
deadline=$((SECONDS + TIMEOUT))
until curl -fsS "$WEBHOOK/readyz" >/dev/null 2>&1 || curl -fsS "http://127.0.0.1:9091/readyz" >/dev/null 2>&1; do
	((SECONDS < deadline)) || { echo "webhook not ready after ${TIMEOUT}s" >&2; exit 1; }
	sleep 1
done
until curl -fsS "$WORKER_METRICS/readyz" >/dev/null 2>&1; do
	((SECONDS < deadline)) || { echo "worker not ready after ${TIMEOUT}s" >&2; exit 1; }
	sleep 1
done
before=$(completed_runs)

curl -fsS "$GHSIM/_ghsim/payload?owner=$OWNER&repo=$REPO&run_id=$RUN_ID&installation_id=$INSTALLATION_ID" -o "$tmp/payload.json"
sig=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$tmp/payload.json" | cut -d' ' -f1)
delivery=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N)
status=$(curl -sS -o "$tmp/response" -w '%{http_code}' -X POST "$WEBHOOK/webhook" \
	-H 'Content-Type: application/json' \
	-H 'X-GitHub-Event: workflow_run' \
	-H "X-GitHub-Delivery: $delivery" \
	-H "X-Hub-Signature-256: sha256=$sig" \
	--data-binary "@$tmp/payload.json")
echo "webhook answered $status for run $RUN_ID (delivery $delivery): $(cat "$tmp/response")"
[[ $status == 202 ]] || exit 1

echo "waiting for the worker to archive the run..."
until [[ $(completed_runs) != "$before" ]]; do
	((SECONDS < deadline)) || { echo "run not archived after ${TIMEOUT}s; see 'docker-compose -f deploy/compose.yaml logs worker'" >&2; exit 1; }
	sleep 1
done
curl -fsS "$WORKER_METRICS/metrics" | grep -E '^archiver_(runs|artifacts)_total|^archiver_archived_bytes_total'
echo "archived. Browse it at http://127.0.0.1:9001 (archiver-demo / archiver-demo-secret), bucket 'archive', prefix 'github/'."
