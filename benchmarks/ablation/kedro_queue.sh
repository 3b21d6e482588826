#!/usr/bin/env bash
# The ablation through `kedro run`: one run per line of a queue file, in a project copy
# (a git worktree outside the work tree: the lock allows one run per folder), at the
# lowest CPU priority, into that copy's mlflow.db. Usage:
#   bash benchmarks/ablation/kedro_queue.sh <project copy> [queue file] [kedro run options]
# Queue lines: "NAME --params=..." (see levers.txt); '#' lines are skipped. Lines are
# read one at a time, so lines after the current one may be edited while it runs. A
# line whose log ends in "Pipeline execution completed" is skipped, so after a stop the
# same command goes on with the next run (an interrupted one resumes at its last epoch).
# touch <project copy>/STOP_QUEUE to start nothing more.
set -u
copy=$(cd "${1:?the project copy to run in}" && pwd)
queue=$(cd "$(dirname "${2:-$(dirname "$0")/levers.txt}")" && pwd)/$(basename "${2:-levers.txt}")
shift $(( $# < 2 ? $# : 2 ))
kedro=${KEDRO:-kedro}
echo 19 > /proc/self/autogroup 2>/dev/null || true  # nice alone does not yield here
logs="$copy/data/ablation/kedro_logs"
mkdir -p "$logs"
i=1
while [ "$i" -le "$(wc -l < "$queue")" ]; do
  line=$(sed -n "${i}p" "$queue"); i=$((i + 1))
  case "$line" in '' | '#'*) continue ;; esac
  [ -e "$copy/STOP_QUEUE" ] && { echo "$(date -u +%FT%TZ) STOP_QUEUE: not starting $line"; break; }
  name=${line%% *}; options=${line#"$name"}
  log="$logs/$name.log"
  if grep -qs "Pipeline execution completed" "$log"; then echo "$(date -u +%FT%TZ) DONE $name (skipped)"; continue; fi
  echo "$(date -u +%FT%TZ) START $name: kedro run --pipelines=catdog_fast$options $*"
  # shellcheck disable=SC2086 # the queue's options are words
  (cd "$copy" && PYTHONPATH="$copy/src" nice -n 19 "$kedro" run --pipelines=catdog_fast $options "$@") >> "$log" 2>&1
  echo "$(date -u +%FT%TZ) END $name rc=$?"
done
echo "$(date -u +%FT%TZ) queue done"
