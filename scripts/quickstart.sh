#!/usr/bin/env bash
# Sets up faasbox on a fresh Debian 12 machine (as root), starts the server, and deploys the
# example functions: the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "building faasbox (release)…"
cargo build --release --locked -p faasbox -p faasbox-agent -p faasbox-oci-runtime
bin=target/x86_64-unknown-linux-gnu/release
install -m 0755 "$bin/faasbox" "$bin/faasbox-agent" "$bin/faasbox-oci" /usr/local/bin/
export FAASBOX_URL=${FAASBOX_URL:-http://127.0.0.1:8470}
data_dir=${FAASBOX_DATA_DIR:-/var/lib/faasbox}
# The CLI reads the server's admin token from $FAASBOX_DATA_DIR/admin.token (root can read it).
export FAASBOX_DATA_DIR=$data_dir
if ! curl -sf "$FAASBOX_URL/api/v1/health" >/dev/null; then
  echo "starting faasbox server (data in $data_dir, log in /var/log/faasbox.log)…"
  nohup faasbox server --data-dir "$data_dir" >>/var/log/faasbox.log 2>&1 &
  for _ in $(seq 1 100); do
    curl -sf "$FAASBOX_URL/api/v1/health" >/dev/null && break
    sleep 0.1
  done
  curl -sf "$FAASBOX_URL/api/v1/health" >/dev/null || { tail -20 /var/log/faasbox.log; exit 1; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for fn in echo greet; do
  examples/build-busybox-function.sh "examples/functions/$fn/index.cgi" "$work/$fn.tar"
  faasbox image import "$work/$fn.tar" --name "examples/$fn:latest" \
    --entrypoint '/bin/busybox httpd -f -p 8080 -h /www' >/dev/null
done
faasbox ns create examples >/dev/null 2>&1 || true
faasbox fn deploy examples/echo --image examples/echo:latest >/dev/null
faasbox fn deploy examples/greet --image examples/greet:latest >/dev/null
faasbox flow deploy examples/greet-team examples/flows/greet-team.yaml >/dev/null
echo
echo "faasbox is running at $FAASBOX_URL with two example functions and a workflow:"
faasbox fn ls examples
faasbox flow ls examples
echo
echo "try:"
echo "  faasbox invoke examples/echo --data '{\"hello\":\"world\"}'"
echo "  faasbox invoke examples/greet --data '{\"name\":\"Ada\"}'"
echo "  faasbox invoke examples/greet --data '{}'        # a catchable error: greet.input"
echo "  curl -s -XPOST $FAASBOX_URL/api/v1/namespaces/examples/functions/greet/invoke \\"
echo "       -H \"Authorization: Bearer \$(cat $data_dir/admin.token)\" -d '{\"name\":\"Ada\"}'"
echo "  faasbox logs <invocation id printed by invoke>"
echo "  faasbox flow run examples/greet-team --data '{\"members\":[\"Ada\",\"Grace\"]}' --wait"
echo
echo "web UI: open $FAASBOX_URL/ in a browser and sign in with the token in $data_dir/admin.token"
echo
echo "first call (starts an instance):"
faasbox invoke examples/greet --data '{"name":"Ada"}'
