#!/usr/bin/env bash
# Benchmark of `callrec serve` as a SIPREC recording server: SIPp places N
# concurrent SIPREC calls (two labelled G.711 mu-law streams each, real RTP
# played from a capture, 20 ms packets) for a fixed time, then BYE. Prints:
# calls completed, packets sent by SIPp vs counted by callrec, CPU seconds of
# callrec per call minute, resident memory per active call, and the time from
# the end of each call to its finished file (mean, from /metrics), and BYE to
# delivered in the local storage (p50, p99, from the catalog; needs sqlite3).
#
# Not a test: nothing here asserts a speed. Usage:
#   bench/siprec.sh [calls=50] [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-50}
secs=${2:-20}
rate=${RATE:-$calls}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  # BENCH_KEEP_DB=PATH: keep a copy of the SQLite catalog to study.
  [ -n "${BENCH_KEEP_DB:-}" ] && sqlite3 "$work/data/catalog.db" ".backup $BENCH_KEEP_DB" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_BIN: an already built binary (skips the build).
# RATE: calls started per second (default: all at once). With RATE, all
# CALLS are up together once the ramp (CALLS / RATE s) is over if SECONDS
# is longer than the ramp, and they end spread over the same time, as in a
# contact center, instead of all in the same second.
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release -q -p callrec
fi
bin=${BENCH_BIN:-$CARGO_TARGET_DIR/release/callrec}

# A capture of two PCMU streams (label 1: a 1 kHz tone, label 2: a 440 Hz
# tone with noise), `secs` long, to ports 6000 and 6002.
python3 - "$work/call.pcap" "$secs" <<'PY'
import math, random, struct, sys
path, secs = sys.argv[1], float(sys.argv[2])
def ulaw(s):
    s = max(-32768, min(32767, int(s))); sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 0x84; e = 7; m = 0x4000
    while e > 0 and not s & m: e -= 1; m >>= 1
    return ~(sign | (e << 4) | ((s >> (e + 3)) & 0x0f)) & 0xff
out = bytearray(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
n = int(secs * 50)
for i in range(n):
    for dport, ssrc, f in ((6000, 0x1111, 1000.0), (6002, 0x2222, 440.0)):
        pay = bytes(ulaw(8000 * math.sin(2 * math.pi * f * (i * 160 + k) / 8000) + random.gauss(0, 300)) for k in range(160))
        rtp = struct.pack('>BBHII', 0x80, 0, i & 0xffff, i * 160, ssrc) + pay
        udp = struct.pack('>HHHH', dport + 1000, dport, 8 + len(rtp), 0) + rtp
        ip = bytearray(struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, bytes([127,0,0,1]), bytes([127,0,0,1])))
        c = sum(struct.unpack('>10H', ip)); c = (c & 0xffff) + (c >> 16); ip[10:12] = struct.pack('>H', ~c & 0xffff)
        frame = bytes(12) + b'\x08\x00' + bytes(ip) + udp
        t = i * 20000
        out += struct.pack('<IIII', t // 1000000, t % 1000000, len(frame), len(frame)) + frame
open(path, 'wb').write(out)
PY

cat > "$work/siprec.xml" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callrec siprec bench">
  <send retrans="500"><![CDATA[
INVITE sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:src@[local_ip]:[local_port]>;+sip.src
Require: siprec
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=SRC 1 1 IN IP[local_ip_type] [local_ip]
s=SIPREC
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=label:1
a=sendonly
m=audio [media_port+2] RTP/AVP 0
a=label:2
a=sendonly
]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="$work/call.pcap"/></action></nop>
  <pause milliseconds="$(( secs * 1000 + 300 ))"/>
  <send retrans="500"><![CDATA[
BYE sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
EOF

sip_port=$((25000 + RANDOM % 5000))
http_port=$((sip_port + 1))
CALLREC_DATA_DIR="$work/data" \
CALLREC_SIP__UDP_LISTEN="127.0.0.1:$sip_port" \
CALLREC_SIP__TCP_LISTEN="" \
CALLREC_HTTP__LISTEN="127.0.0.1:$http_port" \
CALLREC_RTP__BIND_ADDRESS=127.0.0.1 \
CALLREC_RTP__PORT_MIN=30000 CALLREC_RTP__PORT_MAX=39999 \
CALLREC_LOG=warn \
  ${BENCH_WRAP:-} "$bin" serve &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
# The kernel's count of datagrams dropped for a full socket buffer (the
# whole host; the call tasks read their sockets directly, so this is where
# a busy callrec would lose packets).
rcvbuf_errors() { awk '/^Udp:/ && !h {h=1; for (i=1;i<=NF;i++) if ($i=="RcvbufErrors") c=i; next} /^Udp:/ {print $c; exit}' /proc/net/snmp; }
rss0=$(rss_kib); cpu0=$(cpu); rcvbuf0=$(rcvbuf_errors)

sipp -sf "$work/siprec.xml" -m "$calls" -l "$calls" -r "$rate" -rp 1000 -nostdin \
  -i 127.0.0.1 -mp 16000 -timeout $(( secs + 60 ))s \
  "127.0.0.1:$sip_port" >/dev/null 2>"$work/sipp.err" &
sipp_pid=$!
peak=0
sipp_ticks=0
while kill -0 "$sipp_pid" 2>/dev/null; do
  r=$(rss_kib); [ "$r" -gt "$peak" ] && peak=$r
  t=$(awk '{print $14 + $15}' "/proc/$sipp_pid/stat" 2>/dev/null || echo 0)
  [ "${t:-0}" -gt "$sipp_ticks" ] && sipp_ticks=$t
  sleep 0.5
done
wait "$sipp_pid" && sipp_ok=yes || sipp_ok=no
sleep 1
cpu1=$(cpu)
metrics=$(curl -s "http://127.0.0.1:$http_port/metrics")
m() { echo "$metrics" | awk -v k="$1" 'index($0, k" ") == 1 {print $2}'; }
finished=$(m 'callrec_recordings_total{status="finished"}')
received=$(m 'callrec_rtp_packets_total{result="received"}')
rcvbuf1=$(rcvbuf_errors)
fin_ms=$(m 'callrec_recording_finalize_milliseconds_sum')
sent=$(( calls * 2 * secs * 50 ))
cpu_s=$(echo "scale=3; ($cpu1 - $cpu0) / $ticks" | bc)
echo "calls:                       $calls x ${secs}s, started $rate per second (sipp ok: $sipp_ok)"
echo "recordings finished:         $finished"
echo "rtp packets sent by sipp:    $sent"
echo "rtp packets counted:         $received (UDP receive-buffer drops, whole host: $(( rcvbuf1 - rcvbuf0 )))"
echo "cpu seconds per call minute: $(echo "scale=4; $cpu_s / ($calls * $secs / 60)" | bc) (sipp, on the same cores: $(echo "scale=4; $sipp_ticks / $ticks / ($calls * $secs / 60)" | bc))"
echo "rss per active call (KiB):   $(( (peak - rss0) / calls )) (peak $peak KiB, idle $rss0 KiB)"
echo "end-of-call to file (mean):  $(echo "scale=1; ${fin_ms:-0} / ${finished:-1}" | bc) ms"
up_sum=$(m 'callrec_upload_duration_seconds_sum'); up_n=$(m 'callrec_upload_duration_seconds_count')
echo "upload and verify (mean):    $(echo "scale=1; ${up_sum:-0} * 1000 / ${up_n:-1}" | bc) ms ($up_n uploads when the calls ended)"
# BYE -> delivered (local storage), from the catalog: each call's end time
# against its recording's delivery time. Waits (bounded) for the worker.
# With CALLREC_CATALOG__URL=postgres://... the PostgreSQL catalog is asked
# (psql) instead of the embedded SQLite file.
db="$work/data/catalog.db"
case "${CALLREC_CATALOG__URL:-}" in
  postgres*) q() { psql -At "$CALLREC_CATALOG__URL" -c "$1"; } ;;
  *) q() { sqlite3 "$db" "$1"; } ;;
esac
if { [ -n "${CALLREC_CATALOG__URL:-}" ] && command -v psql >/dev/null; } || { command -v sqlite3 >/dev/null && [ -f "$db" ]; }; then
  for _ in $(seq 120); do
    left=$(q "select count(*) from recordings where status not in ('delivered','declined')")
    [ "$left" = 0 ] && break; sleep 0.5
  done
  lat=$(q "select r.delivered_at - c.ended_at from recordings r join calls c on c.id = r.call_id where r.status = 'delivered' order by 1")
  n=$(echo "$lat" | grep -c . || true)
  if [ "$n" -gt 0 ]; then
    p50=$(echo "$lat" | sed -n "$(( (n + 1) / 2 ))p")
    p90=$(echo "$lat" | sed -n "$(( (n * 90 + 99) / 100 ))p")
    p99=$(echo "$lat" | sed -n "$(( (n * 99 + 99) / 100 ))p")
    max=$(echo "$lat" | tail -1)
    echo "bye to delivered (p50, p99): ${p50} ms, ${p99} ms (p90 ${p90} ms, max ${max} ms; $n delivered, $left not yet)"
    # Where that time goes: BYE to each status change, as the catalog
    # recorded it (finalizing and spooled when the catalog task applied
    # them, uploading when the delivery worker took the recording).
    for st in finalizing spooled uploading delivered; do
      lat=$(q "select h.at - c.ended_at from recording_status_history h join recordings r on r.id = h.recording_id join calls c on c.id = r.call_id where h.to_status = '$st' order by 1")
      n=$(echo "$lat" | grep -c . || true)
      [ "$n" -gt 0 ] || continue
      printf '  bye to %-11s p50 %6s ms, p99 %6s ms\n' "$st:" \
        "$(echo "$lat" | sed -n "$(( (n + 1) / 2 ))p")" "$(echo "$lat" | sed -n "$(( (n * 99 + 99) / 100 ))p")"
    done
  fi
fi
