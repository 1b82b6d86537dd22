#!/usr/bin/env bash
# Runs a command next to a throwaway Prosody: a config in a temporary directory, a free port
# on two loopback addresses (so that two clients can reach it as two hosts would), offline
# storage off, Nagle off, users alice/alicepw, bob/bobpw and carol/carolpw (domain
# "localhost") in one shared group so that presence flows without subscriptions. The command
# gets MSGRPRIV_XMPP_SERVER=<ip>:<port> and MSGRPRIV_XMPP_SERVER2=<ip2>:<port>. Prosody is
# stopped and waited for when the command ends, also when it fails; the command's status is
# the script's. The server speaks plain TCP, or with --tls requires STARTTLS on that port
# and offers direct TLS on a second one, with a self-signed leaf certificate for "localhost"
# made by openssl; the command then also gets MSGRPRIV_XMPP_CA_FILE (that certificate, PEM)
# and MSGRPRIV_XMPP_DIRECT_TLS_SERVER=<ip>:<direct TLS port>.
#
#   bash scripts/with-prosody.sh [--tls] [--ip 127.0.0.1] [--ip2 127.0.0.2] COMMAND [ARGS...]
set -euo pipefail
ip=127.0.0.1
ip2=127.0.0.2
tls=0
while [ $# -gt 1 ]; do
    case $1 in
        --ip) ip=$2; shift 2 ;;
        --ip2) ip2=$2; shift 2 ;;
        --tls) tls=1; shift ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
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

# A port free on both addresses: bind port 0 on the first (the kernel chooses), check the
# second. Two such ports (the second for direct TLS).
read -r port direct_port < <(python3 - "$ip" "$ip2" <<'PY'
import socket, sys
ports, held = [], []
for _ in range(100):
    a = socket.socket(); a.bind((sys.argv[1], 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind((sys.argv[2], p))
    except OSError:
        continue
    held += [a, b]
    ports.append(p)
    if len(ports) == 2:
        break
print(*ports)
PY
) || true
[ -n "${direct_port:-}" ] || { echo "with-prosody: no port free on $ip and $ip2" >&2; exit 1; }
mkdir -p "$dir/data" "$dir/certs"
root=false; [ "$(id -u)" = 0 ] && root=true
printf '[msgrpriv]\nalice@localhost\nbob@localhost\ncarol@localhost\n' >"$dir/groups.txt"
modules='"roster"; "saslauth"; "disco"; "ping"; "posix"; "groups"'
if [ "$tls" = 1 ]; then
    # A leaf certificate (CA:FALSE; a CA certificate is refused as an end entity).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
        -keyout "$dir/certs/localhost.key" -out "$dir/certs/localhost.crt" >/dev/null 2>&1 ||
        { echo "with-prosody: openssl could not make a certificate" >&2; exit 1; }
    encryption="modules_enabled = { $modules; \"tls\" }
c2s_direct_tls_ports = { $direct_port }
c2s_require_encryption = true"
else
    encryption="modules_enabled = { $modules }
c2s_direct_tls_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true"
fi
cat >"$dir/prosody.cfg.lua" <<CFG
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
certificates = "$dir/certs"
log = { info = "$dir/prosody.log"; error = "$dir/prosody.err" }
run_as_root = $root
interfaces = { "$ip"; "$ip2" }
c2s_ports = { $port }
s2s_ports = {}; component_ports = {}; http_ports = {}; https_ports = {}
network_settings = { nagle = false }
$encryption
modules_disabled = { "offline" }
groups_file = "$dir/groups.txt"
authentication = "internal_hashed"
storage = "internal"
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
if [ "$tls" = 1 ]; then
    export MSGRPRIV_XMPP_CA_FILE="$dir/certs/localhost.crt"
    export MSGRPRIV_XMPP_DIRECT_TLS_SERVER="$ip:$direct_port"
fi
MSGRPRIV_XMPP_SERVER="$ip:$port" MSGRPRIV_XMPP_SERVER2="$ip2:$port" "$@"
status=$?
set -e
exit "$status"
