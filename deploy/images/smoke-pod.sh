#!/usr/bin/env bash
# Runs the CPU image the way deploy/k8s runs it, in one podman pod (shared loopback, like a
# Kubernetes pod): quarry-server and quarry-worker containers with read-only root filesystems,
# all capabilities dropped, uid 10001, the fixtures mounted read-only at /models. Then
#  1. the quick-start job (tiny model, int4 weight-only, group 128) end to end through the
#     `quarry` CLI in a third container, and the exported files checked;
#  2. a worker drain: SIGTERM (`podman stop`) during a longer job on a worker with a 1 s drain
#     timeout; the worker exits 0, the job is handed back (QUEUED), and a restarted worker
#     finishes it.
# Usage: deploy/images/smoke-pod.sh IMAGE. Needs root podman (see deploy/build-images.sh).
set -euo pipefail
image=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
pod=quarry-smoke-$$
work=$(mktemp -d /var/tmp/quarry-smoke.XXXXXX)
log() { echo "smoke: $*" >&2; }
cleanup() {
  podman pod rm -f "$pod" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/data" "$work/out"
chown 10001:10001 "$work/data" "$work/out"

podman pod create --name "$pod" --network none >/dev/null
hardening=(--pod "$pod" --read-only --cap-drop all --security-opt no-new-privileges
           --user 10001:10001 --tmpfs /tmp:rw,size=512m -v "$root/tests/data:/models:ro")
podman run -d --name "$pod-server" "${hardening[@]}" -v "$work/data:/var/lib/quarry" "$image" \
  --listen 127.0.0.1:50051 --data-dir /var/lib/quarry --model-root /models \
  --metrics-listen 127.0.0.1:9464 >/dev/null
start_worker() {
  podman run -d --name "$pod-worker" "${hardening[@]}" --entrypoint /usr/local/bin/quarry-worker \
    "$image" --server 127.0.0.1:50051 --worker-id smoke-worker --drain-timeout-ms 1000 >/dev/null
}
start_worker
cli() {
  podman run --rm "${hardening[@]}" -v "$work/out:/out" --entrypoint /usr/local/bin/quarry \
    "$image" --server 127.0.0.1:50051 "$@"
}

log "1. quick-start job through the service in the pod"
start=$(date +%s)
cli quantize --model /models/models/tiny-llama-kjv --preset int4_wo_128 \
  --calib /models/kjv-calib.jsonl --out /out/tiny-llama-kjv-int4_wo_128 >"$work/quantize.log" 2>&1 ||
  { cat "$work/quantize.log"; podman logs "$pod-server" | tail -20; podman logs "$pod-worker" | tail -20; exit 1; }
log "   done in $(( $(date +%s) - start )) s; exported files:"
(cd "$work/out/tiny-llama-kjv-int4_wo_128" && find . -type f -printf '   %p %s bytes\n' | sort) >&2
python3 - "$work/out/tiny-llama-kjv-int4_wo_128/config.json" <<'PY'
import json, sys
qc = json.load(open(sys.argv[1]))["quantization_config"]
assert qc["quant_method"] == "quark", qc.get("quant_method")
w = qc["global_quant_config"]["weight"]
assert (w["dtype"], w["group_size"]) == ("int4", 128), w
print("smoke:    config.json: quant_method quark, weight int4 group 128", file=sys.stderr)
PY

log "2. SIGTERM during a job: the worker drains and hands it back"
job=$(cli --json submit --model /models/models/tiny-llama-kjv --preset int8 \
        --calib /models/kjv-calib.jsonl --num-samples 96 --seq-len 128 |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 600); do
  layer=$(cli --json show "$job" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j.get("progress", {}).get("layer_index", 0) if j.get("state") == "JOB_STATE_RUNNING" else -1)')
  [[ $layer -ge 0 ]] && break
  sleep 0.2
done
[[ $layer -ge 0 ]] || { log "job $job never started running"; exit 1; }
log "   job $job running at layer $layer; podman stop (SIGTERM, SIGKILL after 30 s)"
podman stop -t 30 "$pod-worker" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$pod-worker")
podman logs "$pod-worker" 2>&1 | grep -E 'draining|drain timeout' | sed 's/^/   worker: /' >&2
[[ $code == 0 ]] || { log "worker exit code $code"; exit 1; }
state=$(cli --json show "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
log "   worker exited 0; job state now $state"
[[ $state == JOB_STATE_QUEUED ]] || { log "expected the job back in the queue"; exit 1; }
podman rm "$pod-worker" >/dev/null
start_worker
cli --json watch "$job" >"$work/events.json" 2>&1 ||
  { cat "$work/events.json"; log "job $job did not succeed after the hand-back"; exit 1; }
grep -o '"reason":"[^"]*"' "$work/events.json" | sed 's/^/   event /' >&2
grep -q 'handed back by worker smoke-worker' "$work/events.json" ||
  { log "no hand-back event"; exit 1; }
log "   a new worker finished job $job: $(cli --json show "$job" | python3 -c '
import json, sys; j = json.load(sys.stdin); print(j["state"], "after", j["attempts"], "attempts")')"
log "ok"
