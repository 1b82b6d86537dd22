#!/usr/bin/env bash
# Runs a command next to a throwaway Prosody: a config in a temporary directory, a free port
# on two loopback addresses (so that two clients can reach it as two hosts would), offline
# storage off, Nagle off, users alice/alicepw, bob/bobpw and carol/carolpw (domain
# "localhost") in one shared group so that presence flows without subscriptions. The command
# gets MSGRPRIV_XMPP_SERVER=<ip>:<port> and MSGRPRIV_XMPP_SERVER2=<ip2>:<port>. Prosody is
# stopped and waited for when the command ends, also when it fails; the command's status is
# the script's.
#
#   bash scripts/with-prosody.sh [--ip 127.0.0.1] [--ip2 127.0.0.2] COMMAND [ARGS...]
set -euo pipefail
ip=127.0.0.1
ip2=127.0.0.2
while [ $# -gt 1 ]; do
    case $1 in
        --ip) ip=$2; shift 2 ;;
        --ip2) ip2=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
command -v prosody >/dev/null || { echo "with-prosody: prosody not installed (scripts/install-tools.sh installs it)" >&2; exit 1; }

dir=$(mktemp -d /tmp/msgrpriv-prosody.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# A free port: bind port 0 and read what the kernel chose.
# A port free on both addresses: bind port 0 on the first, check the second.
port=$(python3 - "$ip" "$ip2" <<'PY'
import socket, sys
for _ in range(50):
    a = socket.socket(); a.bind((sys.argv[1], 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind((sys.argv[2], p))
    except OSError:
        continue
    print(p)
    break
PY
)
[ -n "$port" ] || { echo "with-prosody: no port free on $ip and $ip2" >&2; exit 1; }
mkdir -p "$dir/data" "$dir/certs"
root=false; [ "$(id -u)" = 0 ] && root=true
printf '[msgrpriv]\nalice@localhost\nbob@localhost\ncarol@localhost\n' >"$dir/groups.txt"
cat >"$dir/prosody.cfg.lua" <<CFG
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
certificates = "$dir/certs"
log = { info = "$dir/prosody.log"; error = "$dir/prosody.err" }
run_as_root = $root
interfaces = { "$ip"; "$ip2" }
c2s_ports = { $port }
c2s_direct_tls_ports = {}; s2s_ports = {}; component_ports = {}; http_ports = {}; https_ports = {}
network_settings = { nagle = false }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "posix"; "groups" }
modules_disabled = { "offline" }
groups_file = "$dir/groups.txt"
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
VirtualHost "localhost"
CFG
for u in alice bob carol; do
    prosodyctl --config "$dir/prosody.cfg.lua" register "$u" localhost "${u}pw" >/dev/null
done
prosody --config "$dir/prosody.cfg.lua" -F </dev/null >/dev/null 2>&1 &
pid=$!
ready=0
for _ in $(seq 1000); do
    if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
if [ "$ready" != 1 ]; then
    echo "with-prosody: prosody did not start; its log:" >&2
    cat "$dir/prosody.log" "$dir/prosody.err" >&2 2>/dev/null || true
    exit 1
fi
set +e
MSGRPRIV_XMPP_SERVER="$ip:$port" MSGRPRIV_XMPP_SERVER2="$ip2:$port" "$@"
status=$?
set -e
exit "$status"
