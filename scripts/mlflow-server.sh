#!/usr/bin/env bash
# A shared MLflow tracking server on PostgreSQL, on 127.0.0.1, for `kedro run --env=server`.
#
#   CONVNETS_DB_PASSWORD=... scripts/mlflow-server.sh start   # or the password in
#   scripts/mlflow-server.sh stop                             # conf/local/credentials.yml
#
# Settings (environment): CONVNETS_SERVER_DIR (default ~/.convnets-server: database,
# artifacts, logs), CONVNETS_PG_PORT (5433), CONVNETS_MLFLOW_PORT (5005, as
# conf/server/mlflow.yml). The password never goes into a committed file: it comes from
# CONVNETS_DB_PASSWORD, else from `mlflow_db: {password: ...}` in conf/local/credentials.yml.
# PostgreSQL refuses to run as root, so as root the cluster runs as the postgres user;
# when PostgreSQL is missing, it is installed with apt-get (Debian, as root).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${CONVNETS_SERVER_DIR:-$HOME/.convnets-server}"
PG_PORT="${CONVNETS_PG_PORT:-5433}"
MLFLOW_PORT="${CONVNETS_MLFLOW_PORT:-5005}"
PGDATA="$DIR/postgres"
SOCKETS="$DIR/sockets"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

password() {
  if [ -n "${CONVNETS_DB_PASSWORD:-}" ]; then printf '%s' "$CONVNETS_DB_PASSWORD"; return; fi
  python3 - "$ROOT/conf/local/credentials.yml" <<'PY'
import sys, pathlib
path = pathlib.Path(sys.argv[1])
try:
    import yaml
    password = (yaml.safe_load(path.read_text()) or {}).get("mlflow_db", {}).get("password")
except (OSError, ImportError):
    password = None
if not password:
    sys.exit("No database password: set CONVNETS_DB_PASSWORD, or mlflow_db: {password: ...} "
             "in conf/local/credentials.yml")
print(password, end="")
PY
}

start() {
  command -v initdb > /dev/null || ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || {
    echo "PostgreSQL is missing: installing it (apt-get install postgresql)"
    apt-get install -y -q postgresql > /dev/null
  }
  PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
  local pw; pw="$(password)"
  mkdir -p "$DIR/artifacts" "$SOCKETS"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    touch "$DIR/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA" "$SOCKETS" "$DIR/postgres.log" && chmod 700 "$PGDATA"
    as_postgres initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 > "$DIR/initdb.log"
    fresh=1
  fi
  if ! as_postgres pg_ctl -D "$PGDATA" status > /dev/null 2>&1; then
    as_postgres pg_ctl -D "$PGDATA" -l "$DIR/postgres.log" -w start \
      -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1" > /dev/null
  fi
  if [ "${fresh:-0}" = 1 ]; then
    as_postgres psql -q -h "$SOCKETS" -p "$PG_PORT" -U postgres -c \
      "CREATE ROLE mlflow LOGIN PASSWORD '$pw'" > /dev/null
    as_postgres createdb -h "$SOCKETS" -p "$PG_PORT" -U postgres -O mlflow mlflow
  fi
  # Checked here: MLflow itself retries a refused login for minutes before it gives up.
  if ! PGPASSWORD="$pw" psql -h 127.0.0.1 -p "$PG_PORT" -U mlflow -d mlflow -qAt -c "SELECT 1" \
    > /dev/null 2> "$DIR/login-check.log"; then
    if grep -q "password authentication failed" "$DIR/login-check.log"; then
      echo "PostgreSQL refused the password of its user mlflow: CONVNETS_DB_PASSWORD or" \
        "mlflow_db.password in conf/local/credentials.yml is not the password the database" \
        "in $PGDATA was created with." >&2
    else
      echo "Cannot log in to PostgreSQL on 127.0.0.1:$PG_PORT:" >&2
      cat "$DIR/login-check.log" >&2
    fi
    return 1
  fi
  # The password reaches MLflow through the environment, not its command line (ps shows that).
  # Its own process group: the server starts worker processes (uvicorn, job consumers)
  # that stop must end with it.
  PGPASSWORD="$pw" setsid nohup mlflow server \
    --backend-store-uri "postgresql+psycopg://mlflow@127.0.0.1:$PG_PORT/mlflow" \
    --serve-artifacts --artifacts-destination "$DIR/artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 > "$DIR/mlflow.log" 2>&1 &
  echo $! > "$DIR/mlflow.pid"
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$MLFLOW_PORT/health" > /dev/null; then
      echo "MLflow server on http://127.0.0.1:$MLFLOW_PORT (PostgreSQL on 127.0.0.1:$PG_PORT, files in $DIR)"
      return 0
    fi
    kill -0 "$(cat "$DIR/mlflow.pid")" 2> /dev/null || break
    sleep 1
  done
  echo "The MLflow server did not start; its log: $DIR/mlflow.log" >&2
  tail -20 "$DIR/mlflow.log" >&2
  return 1
}

stop() {
  if [ -f "$DIR/mlflow.pid" ]; then
    local group; group="$(cat "$DIR/mlflow.pid")"
    kill -- "-$group" 2> /dev/null || true
    for _ in $(seq 1 30); do pgrep -g "$group" > /dev/null || break; sleep 0.5; done
    kill -9 -- "-$group" 2> /dev/null || true
    rm -f "$DIR/mlflow.pid"
  fi
  PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
  [ -f "$PGDATA/postmaster.pid" ] && as_postgres pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
  echo "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
