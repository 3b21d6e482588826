#!/usr/bin/env bash
# Sequential queue runner. Start it as:
#   setsid nohup bash -c 'echo 19 > /proc/self/autogroup; exec nice -n 19 bash run_all.sh' > ../../data/ablation/run_all.log 2>&1 &
# queue.txt: one run per line, "NAME ARGS..." (ARGS for `ablate.py train`); lines read one at a
# time, so lines after the current one may be edited while it runs. '#' lines are skipped.
# touch STOP_QUEUE (here) to launch nothing more; touch ../../data/ablation/STOP_<NAME> (where
# ablate.py looks) to end a run after its epoch.
set -u
cd "$(dirname "$0")"
echo 19 > /proc/self/autogroup 2>/dev/null || true   # no-op if already done by the launcher
PY=${PY:-python}  # the venv with the project installed
mkdir -p ../../data/ablation/logs
i=1
while :; do
  line=$(sed -n "${i}p" queue.txt)
  [ -z "$line" ] && [ "$i" -gt "$(wc -l < queue.txt)" ] && break
  i=$((i+1))
  case "$line" in ''|'#'*) continue;; esac
  [ -e STOP_QUEUE ] && { echo "$(date -u +%FT%TZ) STOP_QUEUE: not starting $line"; break; }
  name=${line%% *}; args=${line#* }
  cmd="$PY ablate.py train --name $name $args"
  echo "$(date -u +%FT%TZ) START $name: $cmd"
  setsid nohup bash -c "echo 19 > /proc/self/autogroup; exec nice -n 19 $cmd" > "../../data/ablation/logs/$name.log" 2>&1 &
  pid=$!
  echo "$pid" > "../../data/ablation/logs/$name.pid"
  wait "$pid"; rc=$?
  echo "$(date -u +%FT%TZ) END $name rc=$rc"
done
echo "$(date -u +%FT%TZ) queue done"
