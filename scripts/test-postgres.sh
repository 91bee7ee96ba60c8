#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test run: `start DIR` makes one in DIR (which must not
# exist; its parent must be traversable by the `postgres` user, as /tmp's directories are) on a
# free loopback port and prints its URL (`postgres://faasbox@127.0.0.1:PORT`, no database:
# each test makes its own); `stop DIR` stops it. initdb refuses root, so as root the cluster
# runs as `postgres`. scripts/test.sh uses it and exports the URL as FAASBOX_TEST_POSTGRES.
set -euo pipefail
action=${1:?usage: $0 start|stop DIR}
dir=${2:?usage: $0 start|stop DIR}
bin=${FAASBOX_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "test-postgres.sh: PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
  exit 1
fi
as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
  start)
    mkdir -m 0700 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_server "$bin/initdb" -D "$dir/data" -U faasbox --auth=trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    for _ in 1 2 3; do
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      if as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null; then
        echo "postgres://faasbox@127.0.0.1:$port"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
  stop)
    as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 1
    ;;
esac
