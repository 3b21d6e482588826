#!/usr/bin/env bash
# The ablation through `kedro run`: one run per line of a queue file, in a project copy
# (a git worktree outside the work tree: the lock allows one run per folder), at the
# lowest CPU priority, into that copy's mlflow.db. Start it in a session of its own:
#   setsid bash benchmarks/ablation/kedro_queue.sh <project copy> [queue file] [-- kedro run options] &
# Queue lines: "NAME --params=..." (levers.txt); '#' lines are skipped; the file is read
# once, as it runs (append lines in place to add runs). A run that ended with exit status 0 leaves <copy>/data/ablation/kedro_logs/NAME.done and is skipped next
# time, so after a stop the same command goes on (an interrupted run resumes at its last
# epoch). Ctrl-C (or a run stopped by SIGINT/SIGTERM) ends the queue; so does the file
# <copy>/STOP_QUEUE, checked before each run (delete it to start again).
set -u -f  # -f: the queue's --params are words, never file patterns
usage() { echo "usage: $0 <project copy> [queue file] [-- kedro run options]" >&2; exit 2; }
[ $# -ge 1 ] && [ -d "$1" ] || usage
copy=$(cd -- "$1" && pwd) || usage
shift
queue="$(dirname -- "$0")/levers.txt"
if [ $# -ge 1 ] && [ "$1" != "--" ]; then queue=$1; shift; fi
[ $# -ge 1 ] && [ "$1" = "--" ] && shift
[ -r "$queue" ] || { echo "$0: cannot read the queue file $queue" >&2; exit 2; }
kedro=${KEDRO:-kedro}
# nice alone does not yield here; the autogroup is this session's (hence setsid above)
echo 19 > /proc/self/autogroup 2>/dev/null || true
export COLUMNS=400  # Rich would wrap the log lines at 80 columns
logs="$copy/data/ablation/kedro_logs"
mkdir -p "$logs"
trap 'echo "$(date -u +%FT%TZ) interrupted: the queue ends"; exit 130' INT TERM
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  line="${line#"${line%%[![:space:]]*}"}"
  case "$line" in '' | '#'*) continue ;; esac
  if [ -e "$copy/STOP_QUEUE" ]; then
    echo "$(date -u +%FT%TZ) $copy/STOP_QUEUE exists: not starting $line (delete it to go on)"
    break
  fi
  name=${line%%[[:space:]]*}; options=${line#"$name"}
  if [ -e "$logs/$name.done" ]; then echo "$(date -u +%FT%TZ) DONE $name (skipped)"; continue; fi
  echo "$(date -u +%FT%TZ) START $name: kedro run --pipelines=catdog_fast$options $*"
  # shellcheck disable=SC2086 # the queue's options are words
  (cd "$copy" && PYTHONPATH="$copy/src" nice -n 19 "$kedro" run --pipelines=catdog_fast $options "$@") \
    >> "$logs/$name.log" 2>&1 < /dev/null
  rc=$?
  echo "$(date -u +%FT%TZ) END $name rc=$rc"
  case $rc in
    0) touch "$logs/$name.done" ;;
    130 | 143) echo "$(date -u +%FT%TZ) $name was stopped: the queue ends"; exit "$rc" ;;
  esac
done < "$queue"
echo "$(date -u +%FT%TZ) queue done"
