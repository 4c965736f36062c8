# Prometheus metrics (issue 13): with SECUREDGRAM_METRICS, /metrics passes promtool
# check metrics, and its counters, histograms and queue rows rise with the traffic a
# test sends; `securedgram metrics` prints the same text over the control socket;
# scrapers that connect and send nothing take every slot and do not delay messages;
# a real Prometheus server scrapes it and answers queries of its counters and
# histograms; a port in use is one ERROR line at start; not running, metrics exits 3.
. "$(dirname "$0")/lib.sh"
SGCTL=$(dirname "$SG_TOOL")/sgctl
command -v promtool > /dev/null || fail "promtool is missing (Debian's prometheus package)"
command -v curl > /dev/null || fail "curl is missing"
command -v prometheus > /dev/null || fail "prometheus is missing (Debian's prometheus package)"

PA=$(freeport); PB=$(freeport); PM=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
echo "SECUREDGRAM_METRICS=127.0.0.1:$PM" >> "$T/b/.env"
start a; start b
URL=http://127.0.0.1:$PM/metrics
scrape() { curl -sf --max-time 5 "$URL" > "$T/$1.prom" || fail "GET $URL failed"; }
check() { promtool check metrics < "$T/$1.prom" > "$T/$1.lint" 2>&1 || fail "promtool: $(cat "$T/$1.lint")"; }
# metric FILE 'NAME{LABELS}': the sample's value
metric() { awk -v k="$2" '$1 == k {print $2}' "$T/$1.prom"; }

# A Prometheus server scraping b every second from now on (queried in part 4).
PP=$(freeport)
cat > "$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: securedgram
    static_configs:
      - targets: ['127.0.0.1:$PM']
YML
timeout 120 prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$PP" > "$T/prometheus.log" 2>&1 &
echo $! > "$T/prometheus.bg.pid"
# promql QUERY: the value of the query's first sample, from the server's HTTP API
promql() {
    curl -sf --max-time 5 -G "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" |
        jq -r '.data.result[0].value[1] // empty'
}

# 1. Before any traffic, and after five messages a -> b.
scrape b0; check b0
assert_eq "$(metric b0 securedgram_messages_stored_total)" 0 "stored before traffic"
for i in 1 2 3 4 5; do queue a "$PB" "{\"n\":$i}" > /dev/null; done
wait_for 10 "5 rows acknowledged" count_is a "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" 5
sgtest flood 127.0.0.1 "$PB" "$SECRET" 3 wrongkey
wait_for 5 "b counted 3 forgeries" sh -c \
    "curl -sf '$URL' | grep -qx 'securedgram_datagrams_dropped_total{reason=\"auth\"} 3'"
# the rows by state are counted at most once a second (CTL_QUEUE_CACHE_MS)
wait_for 5 "b's queue rows counted again" sh -c \
    "curl -sf '$URL' | grep -qx 'securedgram_queue_rows{table=\"inbound\",state=\"ack_sent\"} 5'"
scrape b1; check b1
assert_eq "$(metric b1 securedgram_messages_stored_total)" 5 "b stored"
assert_eq "$(metric b1 securedgram_acks_sent_total)" 5 "b's ACKs"
assert_eq "$(metric b1 securedgram_datagram_to_ack_seconds_count)" 5 "b's datagram -> ACK samples"
assert_eq "$(metric b1 'securedgram_datagram_to_ack_seconds_bucket{le="+Inf"}')" 5 "its +Inf bucket"
assert_eq "$(metric b1 'securedgram_queue_rows{table="inbound",state="ack_sent"}')" 5 "b's inbound rows"
assert_eq "$(metric b1 'securedgram_datagrams_dropped_total{reason="auth"}')" 3 "b's forgeries"
[ "$(metric b1 securedgram_metrics_scrapes_total)" -gt "$(metric b0 securedgram_metrics_scrapes_total)" ] ||
    fail "scrapes not counted: $(metric b1 securedgram_metrics_scrapes_total)"
grep -q '^securedgram_build_info{version="' "$T/b1.prom" || fail "no build_info"
# Every family the Grafana dashboard charts is one b serves (or, per peer, one the daemon
# serves with a peers file: named in ctl_metrics.c, for b has none).
REPO=$(cd "$(dirname "$0")/../.." && pwd)
jq -r '.. | .expr? // empty' "$REPO/contrib/grafana/securedgram.json" | grep -o 'securedgram_[a-z_]*' |
    sed 's/_\(bucket\|sum\|count\)$//' | sort -u > "$T/dashboard.families"
[ -s "$T/dashboard.families" ] || fail "no metric in the dashboard"
while read -r fam; do
    grep -q "^# TYPE $fam " "$T/b1.prom" || grep -q "\"$fam\"" "$REPO/src/daemon/ctl_metrics.c" ||
        fail "the dashboard charts $fam, which the daemon does not serve"
done < "$T/dashboard.families"
note "/metrics passes promtool check metrics; counters, histogram and queue rows match 5 messages and 3 forgeries"

# 2. securedgram metrics: the same text over the control socket (a serves no /metrics).
wait_for 5 "a's queue rows counted again" sh -c "cd '$T/a' && '$SG_BIN/securedgram' metrics |
    grep -qx 'securedgram_queue_rows{table=\"outbound\",state=\"acknowledged\"} 5'"
(cd "$T/a" && sg metrics) > "$T/a.prom" || fail "securedgram metrics failed"
check a
assert_eq "$(metric a securedgram_messages_sent_total)" 5 "a sent"
assert_eq "$(metric a securedgram_acks_received_total)" 5 "a's ACKs received"
assert_eq "$(metric a securedgram_insert_to_ack_seconds_count)" 5 "a's insert -> ACK samples"
assert_eq "$(metric a 'securedgram_queue_rows{table="outbound",state="acknowledged"}')" 5 "a's acknowledged rows"
assert_eq "$(metric a securedgram_messages_in_flight)" 0 "a's in flight"
grep -q securedgram_metrics_scrapes_total "$T/a.prom" && fail "a serves no /metrics, yet counts scrapes"
note "securedgram metrics prints it over the control socket; insert -> ACK histogram counts a's 5"

# 3. Scrapers that connect and send nothing take every slot: messages flow meanwhile.
"$SGCTL" "tcp:127.0.0.1:$PM" idle 8 20000 > "$T/idle" &
IDLE=$!
for i in 1 2 3; do
    R=$(queue a "$PB" "{\"while_idle\":$i}")
    wait_for 5 "a message while 8 scrapers idle" state_is a "$R" acknowledged
done
wait "$IDLE"
case "$(cat "$T/idle")" in "closed after "*) ;; *) fail "idle scrapers: $(cat "$T/idle")" ;; esac
scrape b2; check b2
assert_eq "$(metric b2 securedgram_messages_stored_total)" 8 "b stored, idle scrapers or not"
note "8 scrapers that send nothing: messages acknowledged meanwhile, the scrapers dropped ($(cat "$T/idle")), then served again"

# 4. What the Prometheus server scraped: the counter, and a quantile of the histogram.
wait_for 30 "Prometheus to have scraped b's 8 messages" sh -c \
    "curl -sf -G 'http://127.0.0.1:$PP/api/v1/query' --data-urlencode 'query=securedgram_messages_stored_total' |
     jq -e '.data.result[0].value[1] == \"8\"' > /dev/null"
assert_eq "$(promql 'up{job="securedgram"}')" 1 "the target's health"
q50=$(promql 'histogram_quantile(0.5, sum by (le) (securedgram_datagram_to_ack_seconds_bucket))')
awk -v q="$q50" 'BEGIN { exit !(q > 0 && q <= 1) }' || fail "datagram -> ACK median from Prometheus: '$q50'"
assert_eq "$(promql 'sum(securedgram_queue_rows{table="inbound"})')" 8 "b's inbound rows, in Prometheus"
kill "$(cat "$T/prometheus.bg.pid")"
note "a real Prometheus server scraped b: stored 8, up 1, datagram -> ACK median $q50 s"

# 5. A port already taken: one ERROR line, exit 1; not running: metrics exits 3.
mkpeer c "$(freeport)"
echo "SECUREDGRAM_METRICS=127.0.0.1:$PM" >> "$T/c/.env"
expect_error "SECUREDGRAM_METRICS: cannot listen on 127.0.0.1:$PM" sh -c "cd '$T/c' && '$SG_BIN/securedgram' start"
not_running c || fail "c runs without its /metrics"
rc=0; (cd "$T/c" && sg metrics > "$T/c.prom" 2> "$T/c.err") || rc=$?
assert_eq "$rc" 3 "securedgram metrics, not running"
grep -q "not running" "$T/c.err" || fail "metrics, not running: $(cat "$T/c.err")"
note "a taken port: one ERROR line at start; metrics when not running: exit 3"
exit 0
