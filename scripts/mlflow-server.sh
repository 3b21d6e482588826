#!/usr/bin/env bash
# A shared MLflow tracking server on PostgreSQL, on 127.0.0.1, for `kedro run --env=server`.
#
#   CONVNETS_DB_PASSWORD=... scripts/mlflow-server.sh start   # or the password in
#   scripts/mlflow-server.sh stop                             # conf/local/credentials.yml
#
# Settings (environment): CONVNETS_SERVER_DIR (database, artifacts, logs; default
# ~/.convnets-server, or /var/lib/convnets-server as root, where postgres must reach it), CONVNETS_PG_PORT (5433), CONVNETS_MLFLOW_PORT (5005, as
# conf/server/mlflow.yml). The password never goes into a committed file: it comes from
# CONVNETS_DB_PASSWORD, else from `mlflow_db: {password: ...}` in conf/local/credentials.yml.
# PostgreSQL refuses to run as root, so as root the cluster runs as the postgres user;
# when PostgreSQL is missing, it is installed with apt-get (Debian, as root).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" = 0 ]; then DEFAULT_DIR=/var/lib/convnets-server; else DEFAULT_DIR="$HOME/.convnets-server"; fi
DIR="${CONVNETS_SERVER_DIR:-$DEFAULT_DIR}"
PG_PORT="${CONVNETS_PG_PORT:-5433}"
MLFLOW_PORT="${CONVNETS_MLFLOW_PORT:-5005}"
PGDATA="$DIR/postgres"
SOCKETS="$DIR/sockets"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Debian keeps initdb and pg_ctl off PATH, in /usr/lib/postgresql/<version>/bin.
add_postgres_to_path() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | tail -1 || true)"
  if [ -n "$bin" ]; then PATH="$PATH:$bin"; fi
}

# psql as the cluster's superuser, over the cluster's own socket folder.
admin_psql() {
  as_postgres psql -X -q -At -h "$SOCKETS" -p "$PG_PORT" -U postgres "$@"
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
  add_postgres_to_path
  command -v initdb > /dev/null || {
    echo "PostgreSQL is missing: installing it (apt-get install postgresql)"
    apt-get update -q > /dev/null && apt-get install -y -q postgresql > /dev/null
    add_postgres_to_path
  }
  local pw; pw="$(password)"
  mkdir -p "$DIR/artifacts" "$SOCKETS"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    touch "$DIR/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA" "$SOCKETS" "$DIR/postgres.log" && chmod 700 "$PGDATA"
    as_postgres initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 > "$DIR/initdb.log"
  fi
  # The socket folder trusts its local users: only the cluster's owner may use it.
  if ! as_postgres pg_ctl -D "$PGDATA" status > /dev/null 2>&1; then
    as_postgres pg_ctl -D "$PGDATA" -l "$DIR/postgres.log" -w start \
      -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1 -c unix_socket_permissions=0700" > /dev/null
  fi
  # The role and database, if an earlier start did not get that far. The password goes
  # through psql's environment and standard input (not its command line), quoted by
  # psql, and a failing statement is not written to the server's log.
  if [ "$(admin_psql -c "SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")" != 1 ]; then
    printf '%s\n' "SET log_min_error_statement = panic;" '\getenv pw CONVNETS_NEW_DB_PASSWORD' \
      "CREATE ROLE mlflow LOGIN PASSWORD :'pw';" \
      | CONVNETS_NEW_DB_PASSWORD="$pw" admin_psql > /dev/null
  fi
  if [ "$(admin_psql -c "SELECT 1 FROM pg_database WHERE datname = 'mlflow'")" != 1 ]; then
    admin_psql -c "CREATE DATABASE mlflow OWNER mlflow" > /dev/null
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
  if [ -f "$DIR/mlflow.pid" ] && kill -0 "$(cat "$DIR/mlflow.pid")" 2> /dev/null; then
    echo "The MLflow server of $DIR is already running (pid $(cat "$DIR/mlflow.pid")); stop it first"
    return 0
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
  add_postgres_to_path
  if [ -f "$PGDATA/postmaster.pid" ]; then as_postgres pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null; fi
  echo "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
