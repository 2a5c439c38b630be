#!/usr/bin/env bash
# ColabHive through the shared peer-benchmark harness (/work/shared/peers, read-only).
#
# Same method as the harness's run.sh (wrk -t1, c=1 and c=32, WARMUP s unmeasured then
# DURATION s measured, same JSON body and sentence, same correctness check before
# loading, 1 torch thread), reusing its files by path:
#   bench/post.lua, bench/check.py, bench/report.py, servers/raw_bench.py, servers/common.py
#
# Scenarios (one run, in this order):
#   raw       in-process MiniLM ceiling: servers/raw_bench.py with .venv's python,
#             1 thread, fp32, batch 1/8/32 (also writes the reference embedding)
#   CH-echo   gateway -> long-poll node -> echo           (POST /v1/fn/echo)
#   CH-embed  gateway -> long-poll node -> MiniLM, node max_items 32 (POST /v1/fn/minilm-embed)
#   optional: PEERS=litserve also runs the harness's LitServe scenarios (1b, 2b, 2c)
#             via its run.sh into $OUT/peers, for a same-day comparison.
#
# Knobs (environment):
#   DURATION=10     seconds of measured load per (scenario, concurrency)
#   WARMUP=3        seconds of unmeasured load just before each measurement
#   CONCS="1 32"    wrk connection counts (= requests in flight)
#   RAW_SECONDS=3   seconds per cell of the in-process benchmark
#   TORCH_THREADS=1 node torch threads (and OMP/MKL threads)
#   EMBED_MAX_ITEMS=32  node --max-items in CH-embed
#   PEERS=""        "litserve": also run the shared LitServe scenarios (needs /tmp/peers
#                   venvs; runs the harness's setup.sh, ~2.5 min, when they are missing)
#   OUT=bench/out/<UTC stamp>   results folder
set -uo pipefail
set +m  # no job control: background jobs stay in our process group until setsid

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEERS_DIR=${PEERS_DIR:-/work/shared/peers}
PY=${PY:-$ROOT/.venv/bin/python}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONCS=${CONCS:-"1 32"}
RAW_SECONDS=${RAW_SECONDS:-3}
EMBED_MAX_ITEMS=${EMBED_MAX_ITEMS:-32}
PEERS=${PEERS:-}
OUT=${OUT:-$HERE/out/$(date -u +%Y%m%dT%H%M%SZ)}
export TORCH_THREADS=${TORCH_THREADS:-1}
export OMP_NUM_THREADS=$TORCH_THREADS MKL_NUM_THREADS=$TORCH_THREADS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/http.jsonl
: >"$RESULTS"
REF=$OUT/ref_embedding.json
CLK_TCK=$(getconf CLK_TCK)

command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
[[ -x $PY ]] || { echo "$PY missing: run 'make install'" >&2; exit 1; }
for f in bench/post.lua bench/check.py bench/report.py servers/raw_bench.py servers/common.py; do
  [[ -r $PEERS_DIR/$f ]] || { echo "$PEERS_DIR/$f missing" >&2; exit 1; }
done

SENTENCE=$("$PY" -c "import sys; sys.path.insert(0, '$PEERS_DIR/servers'); from common import SENTENCE; print(SENTENCE)")
BODY_TEXT=$("$PY" -c 'import json,sys; print(json.dumps({"text": sys.argv[1]}))' "$SENTENCE")

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }

# ---- process management ------------------------------------------------------------
# Every hive process (gateway, node) runs in its own session via setsid, so its pid is
# also its process-group and session id; Granian's worker stays in the gateway's
# session. Stopping = SIGTERM to the whole group (the node finishes its batch and
# leaves, Granian shuts down), wait, then SIGKILL to whatever is left in the session.
GW_PID="" NODE_PID=""
STARTED=()  # every session id we created (checked at exit: nothing may be left)
start_proc() {  # logname command... ; sets LAST_PID
  local name=$1; shift
  setsid "$@" >"$OUT/logs/$name.log" 2>&1 &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}
sess_pids() { ps -eo pid=,sid= | awk -v s="$1" '$2==s{print $1}'; }
stop_proc() {  # what pid grace_seconds
  local what=$1 pid=$2 grace=$3 i left p t0=$SECONDS
  [[ -n $pid ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null
  for ((i = 0; i < grace * 5; i++)); do
    [[ -z $(sess_pids "$pid") ]] && break
    sleep 0.2
  done
  left=$(sess_pids "$pid")
  if [[ -n $left ]]; then
    log "  $what (session $pid) still had $(echo $left | wc -w) process(es) after ${grace}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null
    for p in $left; do kill -KILL "$p" 2>/dev/null; done
  else
    log "  $what stopped after SIGTERM in ~$((SECONDS - t0)) s"
  fi
  wait "$pid" 2>/dev/null
  return 0
}
hive_down() {  # node first, so it can hand back its work, then the gateway
  # node grace > poll_wait_ms (20 s): a node may sit in a long-poll before it leaves
  stop_proc node "$NODE_PID" 30; NODE_PID=""
  stop_proc gateway "$GW_PID" 15; GW_PID=""
  sleep 1
}
on_exit() {
  hive_down
  local s left=""
  for s in "${STARTED[@]}"; do left+=$(sess_pids "$s"); done
  [[ -z $left ]] || { echo "WARNING: processes left running: $left" >&2; }
}
trap on_exit EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ready_has() {  # url function -> 0 when /healthz lists the function as ready
  curl -sf "$1/healthz" 2>/dev/null | "$PY" -c 'import json,sys; sys.exit(0 if sys.argv[1] in json.load(sys.stdin).get("ready", []) else 1)' "$2" 2>/dev/null
}

# hive_up ID FUNCTION MAX_ITEMS : config in $OUT, gateway on a free port, one node hosting
# only FUNCTION; sets URL. Returns non-zero when it does not come up.
hive_up() {
  local id=$1 fn=$2 max_items=$3 port cfg i
  port=$(free_port)
  while [[ $port == 8700 || $port == 8799 ]]; do port=$(free_port); done
  URL=http://127.0.0.1:$port
  cfg=$OUT/hive-$id.toml
  # hive.toml's settings, except: own port and state dir, telemetry off, no docs pages
  # (the harness's Litestar runs with openapi_config=None too).
  cat >"$cfg" <<EOF
state_dir = "$OUT/var-$id"
manifest_dirs = ["$ROOT/manifests"]
site_dirs = ["$ROOT/nodes"]

[gateway]
host = "127.0.0.1"
port = $port
docs = false

[node]
site = "local"
functions = ["$fn"]
max_items = $max_items
poll_wait_ms = 20000
heartbeat_s = 2.0
torch_threads = $TORCH_THREADS

[telemetry]
exporter = "none"
EOF
  start_proc "$id-gateway" "$PY" -m colabhive --log-level WARNING gateway --config "$cfg"
  GW_PID=$LAST_PID
  for ((i = 0; i < 30 * 4; i++)); do
    curl -sf -o /dev/null "$URL/healthz" && break
    kill -0 "$GW_PID" 2>/dev/null || return 1
    sleep 0.25
  done
  curl -sf -o /dev/null "$URL/healthz" || return 1
  start_proc "$id-node" "$PY" -m colabhive --log-level WARNING node --config "$cfg" \
    --gateway "$URL" --name "bench-$id" --functions "$fn" --max-items "$max_items"
  NODE_PID=$LAST_PID
  for ((i = 0; i < 120 * 4; i++)); do
    ready_has "$URL" "$fn" && return 0
    kill -0 "$NODE_PID" 2>/dev/null || return 1
    kill -0 "$GW_PID" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

# ---- measurement (as in the harness's run.sh, plus gateway / node CPU) --------------
cpu_busy() {  # prints "busy total" jiffies from /proc/stat
  awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat
}
tree_pids() {  # sid -> pids in that session plus their descendants in other sessions
  # (the gateway's supervisor starts Granian in a session of its own)
  ps -eo pid=,ppid=,sid= | awk -v s="$1" '
    { pp[$1] = $2; if ($3 == s) keep[$1] = 1 }
    END { do { changed = 0; for (p in pp) if (!(p in keep) && (pp[p] in keep)) { keep[p] = 1; changed = 1 } } while (changed)
          for (p in keep) print p }'
}
sess_jiffies() {  # sid -> utime+stime of every live process in that session and below it
  local p sum=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) && sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# load ID NAME URL BODY : warm-up + measured wrk run per concurrency
load() {
  local id=$1 name=$2 url=$3 body=$4 c b0 t0 b1 t1 w0 w1 g0 g1 n0 n1 line tm
  for c in $CONCS; do
    WRK_BODY=$body wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 30s -s "$PEERS_DIR/bench/post.lua" "$url" >/dev/null 2>&1
    g0=$(sess_jiffies "$GW_PID"); n0=$(sess_jiffies "$NODE_PID")
    read -r b0 t0 < <(cpu_busy)
    w0=$(date +%s.%N)
    WRK_BODY=$body /usr/bin/time -o "$OUT/logs/time-$id-c$c.txt" -f '%e %U %S' \
      wrk -t1 -c"$c" -d"${DURATION}s" --timeout 30s -s "$PEERS_DIR/bench/post.lua" "$url" \
      >"$OUT/logs/wrk-$id-c$c.txt" 2>&1
    tm=$(tail -n 1 "$OUT/logs/time-$id-c$c.txt")
    w1=$(date +%s.%N)
    read -r b1 t1 < <(cpu_busy)
    g1=$(sess_jiffies "$GW_PID"); n1=$(sess_jiffies "$NODE_PID")
    line=$(grep '^WRKJSON ' "$OUT/logs/wrk-$id-c$c.txt" | sed 's/^WRKJSON //')
    if [[ -z $line ]]; then
      log "  $id c=$c: wrk produced no result (see logs/wrk-$id-c$c.txt)"
      echo "{\"id\": \"$id\", \"name\": \"$name\", \"conc\": $c, \"failed\": \"wrk produced no result\"}" >>"$RESULTS"
      continue
    fi
    "$PY" - "$id" "$name" "$c" "$line" "$tm" "$b0" "$t0" "$b1" "$t1" "$w0" "$w1" \
      "$g0" "$g1" "$n0" "$n1" "$CLK_TCK" >>"$RESULTS" <<'EOF'
import json, sys
id_, name, c, line, tm, b0, t0, b1, t1, w0, w1, g0, g1, n0, n1, hz = sys.argv[1:]
w = json.loads(line)
real, user, sys_ = (float(x) for x in tm.split())
dur = w["duration_us"] / 1e6
wall = float(w1) - float(w0)
errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_status"] + w["err_timeout"]
print(json.dumps({
    "id": id_, "name": name, "conc": int(c), "requests": w["requests"],
    "rps": round(w["requests"] / dur, 1), "p50_ms": w["p50_us"] / 1e3, "p99_ms": w["p99_us"] / 1e3,
    "max_ms": w["max_us"] / 1e3, "errors": errors,
    "wrk_cpu_pct": round(100 * (user + sys_) / real, 1),
    "box_cpu_pct": round(100 * (int(b1) - int(b0)) / max(1, int(t1) - int(t0)), 1),
    # % of one core, over the measured window (all processes of the gateway / node session)
    "gateway_cpu_pct": round(100 * (int(g1) - int(g0)) / int(hz) / wall, 1),
    "node_cpu_pct": round(100 * (int(n1) - int(n0)) / int(hz) / wall, 1),
    "t0": float(w0), "t1": float(w1),
}))
EOF
    log "  $id c=$c: $(tail -n 1 "$RESULTS")"
  done
}

FAILED=0
fail() {  # ID NAME reason
  log "  $1 FAILED: $3"
  FAILED=1
  echo "{\"id\": \"$1\", \"name\": \"$2\", \"conc\": 0, \"failed\": $("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$3")}" >>"$RESULTS"
}

# ---- run ---------------------------------------------------------------------------
T_START=$(date +%s)
log "output: $OUT   (DURATION=${DURATION}s WARMUP=${WARMUP}s CONCS='$CONCS' TORCH_THREADS=$TORCH_THREADS, wrk -t1)"
{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(getconf _NPROCESSORS_ONLN) cores; mem: $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "python: $("$PY" -V 2>&1)"; echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "venv main: $("$PY" -m pip list 2>/dev/null | awk 'tolower($1) ~ /^(torch|transformers|litestar|granian|msgspec|uvloop|colabhive|colabhive-cpu)$/{printf "%s=%s ", $1, $2}')"
  echo "colabhive git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($(git -C "$ROOT" status --porcelain 2>/dev/null | grep -vc '^??') modified tracked files)"
  echo "settings: DURATION=$DURATION WARMUP=$WARMUP CONCS='$CONCS' TORCH_THREADS=$TORCH_THREADS RAW_SECONDS=$RAW_SECONDS EMBED_MAX_ITEMS=$EMBED_MAX_ITEMS PEERS='$PEERS'"
} >"$OUT/env.txt"

# raw: in-process ceiling (also writes the reference vector the embed check uses)
log "raw: in-process forward passes (fp32, 1 thread, batch 1/8/32, ${RAW_SECONDS}s per cell)"
"$PY" "$PEERS_DIR/servers/raw_bench.py" --seconds "$RAW_SECONDS" --threads 1 --dtypes fp32 \
  --batches 1,8,32 --ref "$REF" 2>"$OUT/logs/raw.err" | tee "$OUT/raw.jsonl" | grep '"raw"' | sed 's/^/  /'
[[ -s $REF ]] || { echo "raw benchmark failed, see $OUT/logs/raw.err" >&2; exit 1; }

# CH-echo: gateway -> node -> echo
name="ColabHive gateway -> node, echo"
log "CH-echo: $name"
if hive_up CH-echo echo 32 && "$PY" "$PEERS_DIR/bench/check.py" "$URL/v1/fn/echo" "$BODY_TEXT" echo; then
  load CH-echo "$name" "$URL/v1/fn/echo" "$BODY_TEXT"
else fail CH-echo "$name" "did not start or failed the check (logs/CH-echo-*.log)"; fi
hive_down

# CH-embed: gateway -> node -> MiniLM, node max_items 32
name="ColabHive gateway -> node, MiniLM (max_items $EMBED_MAX_ITEMS)"
log "CH-embed: $name"
if hive_up CH-embed minilm-embed "$EMBED_MAX_ITEMS" \
  && "$PY" "$PEERS_DIR/bench/check.py" "$URL/v1/fn/minilm-embed" "$BODY_TEXT" embed "$REF"; then
  load CH-embed "$name" "$URL/v1/fn/minilm-embed" "$BODY_TEXT"
else fail CH-embed "$name" "did not start or failed the check (logs/CH-embed-*.log)"; fi
hive_down

# optional: the harness's own LitServe scenarios, same session
if [[ " $PEERS " == *" litserve "* ]]; then
  VENVS=${PEERS_VENV_ROOT:-/tmp/peers}
  if ! [[ -x $VENVS/stack/bin/python && -x $VENVS/litserve/bin/python ]]; then
    log "peers: venvs missing under $VENVS: running $PEERS_DIR/setup.sh (SKIP_BENTOML=1, ~2.5 min)"
    SKIP_BENTOML=1 "$PEERS_DIR/setup.sh" >"$OUT/logs/peers-setup.log" 2>&1 \
      || log "peers: setup.sh failed (logs/peers-setup.log)"
  fi
  log "peers: $PEERS_DIR/run.sh ONLY=litserve -> $OUT/peers"
  OUT=$OUT/peers ONLY=litserve DURATION=$DURATION WARMUP=$WARMUP CONCS=$CONCS RAW_SECONDS=$RAW_SECONDS \
    RAW_THREADS=1 "$PEERS_DIR/run.sh" >"$OUT/logs/peers-run.log" 2>&1 \
    || { log "peers: run.sh failed (logs/peers-run.log)"; FAILED=1; }
  grep -E '^\[.* (1b|2b|2c) c=' "$OUT/logs/peers-run.log" | sed 's/^/  /'
fi

log "done in $(($(date +%s) - T_START)) s"
{
  "$PY" "$PEERS_DIR/bench/report.py" "$OUT"
  echo
  "$PY" "$HERE/peers_report.py" "$OUT"
} | tee "$OUT/table.md"
exit $FAILED
