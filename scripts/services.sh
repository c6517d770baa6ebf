#!/usr/bin/env bash
# scripts/services.sh: install and run PostgreSQL 15, RabbitMQ and Kafka (KRaft)
# on 127.0.0.1 for parley's integration tests, without systemd or docker.
#
#   eval "$(scripts/services.sh up)"        install if missing, start, wait, print env
#   scripts/services.sh up postgres kafka   only some services
#   scripts/services.sh env [svc...]        print the env (services assumed up)
#   scripts/services.sh status [svc...]     exit 0 only if all given services are up
#   scripts/services.sh down [svc...]       graceful stop
#   scripts/services.sh start|stop|restart|kill <svc>   for fault tests
#   scripts/services.sh rabbitmqctl <args>  e.g. list_queues name messages
#
# Services: postgres, rabbitmq, kafka. Only `export NAME='value'` lines go to
# stdout (or `false` when `up` fails, so that the eval fails under set -e);
# everything else goes to stderr. State (data, logs, certs, pids, Kafka jars)
# lives in ${PARLEY_SERVICES_DIR:-/tmp/parley-services}, which the postgres and
# rabbitmq users must be able to traverse. Nothing installed by hand is
# assumed, since CI machines start fresh: apt packages and Kafka jars are
# installed here, idempotently. PARLEY_SERVICES_TIMEOUT (default 120) is the
# per-service readiness deadline in seconds.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_PATH=$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")
STATE=${PARLEY_SERVICES_DIR:-/tmp/parley-services}
# Per-service deadline for "accepts connections", in seconds.
TIMEOUT=${PARLEY_SERVICES_TIMEOUT:-120}
ALL_SERVICES=(postgres rabbitmq kafka)

CERTS=$STATE/certs
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$STATE/postgres
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/postgres.log
PG_PORT=5432
RMQ_DIR=$STATE/rabbitmq
RMQ_LOG=$RMQ_DIR/log/rabbit.log
RMQ_BIN=/usr/lib/rabbitmq/bin
RMQ_NODE=parley@localhost
KAFKA_DIR=$STATE/kafka
KAFKA_LOG=$KAFKA_DIR/kafka.log
KAFKA_POM=$SCRIPT_DIR/services/kafka/pom.xml
# Fixed cluster id (base64url of the 16 bytes "parley-test-clus"): no JVM is
# needed to make one and the value is the same on every machine.
KAFKA_CLUSTER_ID=cGFybGV5LXRlc3QtY2x1cw
KAFKA_SASL_USER=parley
KAFKA_SASL_PASSWORD=parley-secret

log() { printf '[services +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# fail SERVICE LOGFILE MESSAGE: report a failed service with the path and tail of its log.
fail() {
    local svc=$1 logfile=$2; shift 2
    log "ERROR: $svc: $*"
    log "$svc log: $logfile"
    if [[ -f $logfile ]]; then
        log "---- last lines of $logfile ----"
        tail -n 40 "$logfile" >&2 || true
        log "----"
    fi
    exit 1
}

now() { date +%s; }

# A pid counts as alive unless it is gone or a zombie: whatever reaps orphans
# here (pid 1) may be slow or absent, and `kill -0` succeeds on zombies.
pid_alive() {
    local pid=$1 stat
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    stat=$(</proc/"$pid"/stat) 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# pid_matches PID WORD: alive and its command line mentions WORD (guards against pid reuse).
pid_matches() {
    local cmd
    pid_alive "$1" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$2"* ]]
}

read_pid() { if [[ -s $1 ]]; then head -n 1 "$1" 2>/dev/null | tr -dc 0-9; fi; return 0; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_pid_gone PID SECONDS
wait_pid_gone() {
    local pid=$1 deadline=$(( $(now) + $2 ))
    while pid_alive "$pid"; do
        (( $(now) < deadline )) || return 1
        sleep 0.1
    done
}

# wait_ports_closed SECONDS PORT...: a killed multi-threaded process can look
# dead (its main thread is a zombie) while its other threads still hold the
# listening sockets for a moment; an immediate restart would then find the
# port taken.
wait_ports_closed() {
    local deadline=$(( $(now) + $1 )) p; shift
    for p; do
        while port_open "$p"; do
            (( $(now) < deadline )) || return 1
            sleep 0.05
        done
    done
}

# Serialize actions on one service (go test runs packages in parallel, so two
# fault tests could race). fd 9 is closed for everything launched in background,
# otherwise the server would hold the lock forever.
lock_service() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock-$1"
    flock 9
}

as_user() { # as_user USER CMD...: drop privileges without a PAM session or an extra fork
    local user=$1; shift
    setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}

file_sha() { sha256sum "$1" | cut -c1-12; }

# ---------------------------------------------------------------- installation

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# ensure_packages SERVICE...: one apt-get run for everything missing. Package
# postinst scripts would start the Debian-default server instances (port 5432,
# rabbit@host on 5672); a policy-rc.d that says "no" keeps them from starting.
ensure_packages() {
    local missing=() svc
    command -v openssl >/dev/null || missing+=(openssl)
    for svc in "$@"; do
        case $svc in
            postgres) pkg_installed postgresql-15 && [[ -x $PG_BIN/pg_ctl ]] || missing+=(postgresql) ;;
            rabbitmq) pkg_installed rabbitmq-server && [[ -x $RMQ_BIN/rabbitmq-server ]] || missing+=(rabbitmq-server) ;;
        esac
    done
    ((${#missing[@]})) || return 0
    exec 8>"$STATE/.lock-apt"
    flock 8
    log "installing ${missing[*]} with apt-get"
    local policy=/usr/sbin/policy-rc.d added_policy=''
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0 aptlog=$STATE/apt.log
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confold "${missing[@]}"
    } >"$aptlog" 2>&1 || rc=$?
    [[ -z $added_policy ]] || rm -f "$policy"
    exec 8>&-
    ((rc == 0)) || fail apt "$aptlog" "apt-get install ${missing[*]} failed (exit $rc)"
    log "installed ${missing[*]}"
}

# Kafka comes from Maven Central: copy the broker's runtime classpath into a dir
# named after the pom's hash, so a version bump in the pom refetches by itself.
kafka_lib() { echo "$KAFKA_DIR/lib-$(file_sha "$KAFKA_POM")"; }

ensure_kafka_jars() {
    local lib; lib=$(kafka_lib)
    [[ -f $lib/.complete ]] && return 0
    mkdir -p "$KAFKA_DIR"
    exec 7>"$STATE/.lock-mvn"
    flock 7
    [[ -f $lib/.complete ]] && return 0
    command -v mvn >/dev/null || die "mvn not found (Maven is needed to fetch Kafka)"
    command -v java >/dev/null || die "java not found (Java 17+ is needed to run Kafka)"
    mkdir -p "$KAFKA_DIR"
    log "fetching Kafka jars with Maven into $lib"
    rm -rf "$lib.tmp"
    mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$lib.tmp" >"$KAFKA_DIR/mvn.log" 2>&1 \
        || fail kafka "$KAFKA_DIR/mvn.log" "mvn dependency:copy-dependencies failed"
    ls "$lib.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || fail kafka "$KAFKA_DIR/mvn.log" "no kafka_2.13 jar fetched"
    touch "$lib.tmp/.complete"
    rm -rf "$lib"
    mv "$lib.tmp" "$lib"
    exec 7>&-
}

# Test-only PKI shared by RabbitMQ and Kafka: a CA, a server cert for localhost
# and 127.0.0.1, and a client cert. Keys are world-readable on purpose: the
# brokers run as other users and tests may run as anyone.
ensure_certs() {
    [[ -f $CERTS/.complete ]] && return 0
    exec 8>"$STATE/.lock-certs"
    flock 8
    if [[ ! -f $CERTS/.complete ]]; then
        log "generating TLS certificates in $CERTS"
        local t=$CERTS.tmp
        rm -rf "$t"
        mkdir -p "$t"
        (
            cd "$t"
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
                -keyout ca.key -out ca.pem -subj "/CN=parley test CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign"
            sign() { # sign NAME CN EXTENSIONS
                openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
                printf '%b' "$3" >"$1.ext"
                openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -sha256 -days 3650 \
                    -set_serial "0x$(openssl rand -hex 16)" -extfile "$1.ext" -out "$1.pem"
                rm -f "$1.csr" "$1.ext"
            }
            sign server localhost 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n'
            sign client parley 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:parley\n'
            # Kafka's PEM keystore wants key + chain in one file.
            cat server.key server.pem ca.pem >kafka-server-keystore.pem
            chmod 644 ./*
        ) >"$STATE/openssl.log" 2>&1 || fail certs "$STATE/openssl.log" "openssl failed"
        chmod 755 "$t"
        touch "$t/.complete"
        rm -rf "$CERTS"
        mv "$t" "$CERTS"
    fi
    exec 8>&-
}

# ---------------------------------------------------------------- postgres

pg() { (cd / && as_user postgres env HOME="$PG_DIR" "$@"); }
pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }
postgres_running() { local p; p=$(pg_pid); [[ -n $p ]] && pid_matches "$p" postgres; }
postgres_ready() { port_open "$PG_PORT"; }

postgres_init() {
    [[ -f $PG_DIR/.initialized ]] && return 0
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DIR/run"
    chown -R postgres:postgres "$PG_DIR"
    pg test -w "$PG_DIR" || die "postgres: user postgres cannot reach $PG_DIR (is a parent of PARLEY_SERVICES_DIR private?)"
    # --no-sync only skips initdb's final fsync; the server itself runs with fsync on.
    pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || fail postgres "$PG_DIR/initdb.log" "initdb failed"
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# ---- parley integration tests (scripts/services.sh) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/run'
max_connections = 200
# Durability stays on: fault tests crash/restart the server and count rows.
fsync = on
synchronous_commit = on
full_page_writes = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
    touch "$PG_DIR/.initialized"
}

# Runs every start (cheap, idempotent): the parley role and database.
postgres_bootstrap() {
    pg "$PG_BIN/psql" -X -q -h "$PG_DIR/run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 >>"$PG_DIR/bootstrap.log" 2>&1 <<'EOF' \
        || fail postgres "$PG_DIR/bootstrap.log" "creating role/database parley failed"
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'parley') THEN
    CREATE ROLE parley LOGIN PASSWORD 'parley';
  END IF;
END$$;
SELECT 'CREATE DATABASE parley OWNER parley' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'parley')\gexec
EOF
}

# After a kill -9 the postmaster can stay a zombie for a second or two (pid 1
# reaps orphans lazily), and postgres refuses to start while the pid in
# postmaster.pid exists. We know it is dead, so drop the stale lock file and
# the old (detached) shared memory segment it names, and the socket's lock file
# (same check, same pid).
postgres_clear_stale_pidfile() {
    local f=$PG_DATA/postmaster.pid pid shmid
    [[ -f $f ]] || return 0
    pid=$(pg_pid)
    if [[ -n $pid ]] && pid_matches "$pid" postgres; then return 0; fi
    shmid=$(sed -n 7p "$f" | awk '{print $2}')
    if [[ -n $shmid ]] && ipcs -m | awk -v id="$shmid" '$2 == id && $6 == 0 { found = 1 } END { exit !found }'; then
        ipcrm -m "$shmid" 2>/dev/null || true
    fi
    rm -f "$f" "$PG_DIR/run/.s.PGSQL.$PG_PORT" "$PG_DIR/run/.s.PGSQL.$PG_PORT.lock"
}

postgres_start() {
    if postgres_running && postgres_ready; then return 0; fi
    postgres_init
    if ! postgres_running; then
        postgres_clear_stale_pidfile
        port_open "$PG_PORT" && die "postgres: port $PG_PORT is taken by a process not started by this script (Debian's main cluster? try: pg_ctlcluster 15 main stop)"
        log "postgres: starting"
        # pg_ctl -w waits until the server accepts connections (or died); the
        # postmaster becomes a session leader with output in $PG_LOG.
        pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" start >"$PG_DIR/pg_ctl.log" 2>&1 9>&- \
            || fail postgres "$PG_LOG" "pg_ctl start failed (see also $PG_DIR/pg_ctl.log)"
    fi
    local deadline=$(( $(now) + TIMEOUT ))
    until pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
        postgres_running || fail postgres "$PG_LOG" "server exited during startup"
        (( $(now) < deadline )) || fail postgres "$PG_LOG" "not ready on 127.0.0.1:$PG_PORT after ${TIMEOUT}s"
        sleep 0.1
    done
    postgres_bootstrap
    log "postgres: ready on 127.0.0.1:$PG_PORT"
}

postgres_stop() {
    postgres_running || return 0
    log "postgres: stopping"
    # fast = roll back open transactions, then a clean shutdown checkpoint.
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$PG_DIR/pg_ctl.log" 2>&1 || true
    if postgres_running; then
        log "postgres: graceful stop timed out, killing"
        postgres_kill
    fi
    wait_ports_closed 30 "$PG_PORT" || die "postgres: port $PG_PORT still open after stop"
}

# Crash: SIGKILL the postmaster and all its children at once, like a power cut
# or the OOM killer. (Each postgres child is its own session leader, so there is
# no process group to signal.) Leaving children behind would make the next start
# fail with "pre-existing shared memory block is still in use".
postgres_kill() {
    local pid children p
    pid=$(pg_pid)
    if [[ -z $pid ]] || ! pid_matches "$pid" postgres; then log "postgres: not running"; return 0; fi
    children=$(pgrep -P "$pid" || true)
    log "postgres: kill -9 (postmaster $pid and its $(wc -w <<<"$children") children)"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -9 "$pid" $children 2>/dev/null || true
    for p in $pid $children; do
        wait_pid_gone "$p" 30 || die "postgres: pid $p survived kill -9"
    done
    wait_ports_closed 30 "$PG_PORT" || die "postgres: port $PG_PORT still open 30s after kill -9"
}

postgres_env() {
    cat <<EOF
PARLEY_POSTGRES_DSN=postgres://parley:parley@127.0.0.1:$PG_PORT/parley?sslmode=disable
PARLEY_POSTGRES_HOST=127.0.0.1
PARLEY_POSTGRES_PORT=$PG_PORT
PARLEY_POSTGRES_USER=parley
PARLEY_POSTGRES_PASSWORD=parley
PARLEY_POSTGRES_DB=parley
PARLEY_POSTGRES_LOG=$PG_LOG
EOF
}

postgres_status() { local p; p=$(pg_pid); echo "pid ${p:-?}, 127.0.0.1:$PG_PORT, log $PG_LOG"; }

# ---------------------------------------------------------------- rabbitmq

# Everything the rabbitmq scripts and the CLI read, pointed at our state dir so
# that /etc/rabbitmq and /var/lib/rabbitmq/mnesia are not used. The erlang
# cookie stays in the rabbitmq user's home (/var/lib/rabbitmq), shared by the
# server and rabbitmqctl.
rmq_argv() {
    RMQ_ARGV=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups -- env
        HOME=/var/lib/rabbitmq
        RABBITMQ_NODENAME="$RMQ_NODE"
        RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
        RABBITMQ_LOG_BASE="$RMQ_DIR/log"
        RABBITMQ_LOGS="$RMQ_LOG"
        RABBITMQ_PID_FILE="$RMQ_DIR/beam.pid"
        RABBITMQ_DIST_PORT=25672
        ERL_EPMD_ADDRESS=127.0.0.1
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
}
rmq() { local RMQ_ARGV; rmq_argv; (cd / && "${RMQ_ARGV[@]}" "$@"); }
rabbitmqctl() { rmq "$RMQ_BIN/rabbitmqctl" "$@"; }

# The session leader we launched (a sh wrapper); beam.smp is its child.
rmq_pid() { read_pid "$RMQ_DIR/session.pid"; }
rabbitmq_running() { local p; p=$(rmq_pid); [[ -n $p ]] && pid_matches "$p" rabbitmq; }
rabbitmq_ready() { port_open 5672 && port_open 5671; }

rabbitmq_config() {
    mkdir -p "$RMQ_DIR/log" "$RMQ_DIR/mnesia"
    : >"$RMQ_DIR/rabbitmq-env.conf"
    # No plugins: each one costs boot time. Queue depths are visible with the
    # AMQP passive queue.declare or `rabbitmqctl list_queues`.
    echo '[].' >"$RMQ_DIR/enabled_plugins"
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# Generated by scripts/services.sh; rewritten on every start.
listeners.tcp.default = 127.0.0.1:5672
listeners.ssl.default = 127.0.0.1:5671
ssl_options.cacertfile = $CERTS/ca.pem
ssl_options.certfile = $CERTS/server.pem
ssl_options.keyfile = $CERTS/server.key
# A client cert signed by the CA is verified if sent, but not required.
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
# Only applied when the node boots with an empty database (first start): the
# parley user replaces guest.
default_vhost = /
default_user = parley
default_pass = parley
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.file.level = info
log.console = false
EOF
    chown -R rabbitmq:rabbitmq "$RMQ_DIR"
}

rabbitmq_start() {
    if rabbitmq_running && rabbitmq_ready; then return 0; fi
    if ! rabbitmq_running; then
        local p
        for p in 5672 5671; do
            port_open $p && die "rabbitmq: port $p is taken by a process not started by this script (Debian's rabbitmq-server? try: service rabbitmq-server stop)"
        done
        rabbitmq_config
        log "rabbitmq: starting"
        rm -f "$RMQ_DIR/beam.pid"
        # setsid: its own session (so kill can take the whole group, and no
        # terminal signal reaches it); all fds go to files so that callers
        # reading our stdout (eval "$(...)", exec.Command) are not held open.
        local RMQ_ARGV; rmq_argv
        (cd / && exec setsid "${RMQ_ARGV[@]}" "$RMQ_BIN/rabbitmq-server") \
            >>"$RMQ_DIR/log/console.log" 2>&1 </dev/null 9>&- &
        echo $! >"$RMQ_DIR/session.pid"
    fi
    local deadline=$(( $(now) + TIMEOUT ))
    until rabbitmq_ready; do
        if ! rabbitmq_running; then
            # Once: a node of the same name that was just stopped can still
            # hold its registration for a moment.
            if [[ -z ${RMQ_RETRIED:-} ]]; then
                log "rabbitmq: exited during startup; retrying once (see $RMQ_DIR/log/console.log)"
                RMQ_RETRIED=1
                rabbitmq_wait_unregistered
                sleep 1
                rabbitmq_start
                return
            fi
            fail rabbitmq "$RMQ_LOG" "server exited during startup (see also $RMQ_DIR/log/console.log)"
        fi
        (( $(now) < deadline )) || fail rabbitmq "$RMQ_LOG" "not ready on 127.0.0.1:5672/5671 after ${TIMEOUT}s"
        sleep 0.1
    done
    log "rabbitmq: ready on 127.0.0.1:5672 (amqp), 127.0.0.1:5671 (amqps)"
}

rabbitmq_stop() {
    rabbitmq_running || return 0
    local sid beam; sid=$(rmq_pid); beam=$(read_pid "$RMQ_DIR/beam.pid")
    log "rabbitmq: stopping"
    # SIGTERM makes the Erlang VM stop RabbitMQ cleanly (queues and persistent
    # messages are synced); the sh wrapper exits when the VM does.
    if [[ -n $beam ]] && pid_matches "$beam" beam; then kill -TERM "$beam"; else kill -TERM "$sid"; fi 2>/dev/null || true
    if ! wait_pid_gone "$sid" 60; then
        log "rabbitmq: graceful stop timed out, killing"
        rabbitmq_kill
    fi
    wait_ports_closed 30 5672 5671 25672 || die "rabbitmq: ports still open after stop"
    rabbitmq_wait_unregistered
}

# rabbitmq_wait_unregistered: the VM can outlive its wrapper for a moment and
# keep the node name registered with epmd; a new node of the same name then
# refuses to boot ("node with name parley already running").
rabbitmq_wait_unregistered() {
    local deadline=$(( $(now) + 30 ))
    while epmd -names 2>/dev/null | grep -q "^name ${RMQ_NODE%@*} at"; do
        (( $(now) < deadline )) || { log "rabbitmq: node still registered with epmd after 30s"; return 0; }
        sleep 0.1
    done
}

rabbitmq_kill() {
    local sid; sid=$(rmq_pid)
    if [[ -z $sid ]] || ! pid_matches "$sid" rabbitmq; then log "rabbitmq: not running"; return 0; fi
    log "rabbitmq: kill -9 (session $sid)"
    # The whole process group: the wrapper, beam.smp and erl_child_setup.
    # (epmd daemonizes into its own session and survives, as on a real host.)
    kill -9 -- "-$sid" 2>/dev/null || true
    wait_pid_gone "$sid" 30 || die "rabbitmq: pid $sid survived kill -9"
    local beam; beam=$(read_pid "$RMQ_DIR/beam.pid")
    [[ -z $beam ]] || wait_pid_gone "$beam" 30 || true
    wait_ports_closed 30 5672 5671 || die "rabbitmq: ports still open 30s after kill -9"
}

rabbitmq_env() {
    cat <<EOF
PARLEY_AMQP_URL=amqp://parley:parley@127.0.0.1:5672/
PARLEY_AMQPS_URL=amqps://parley:parley@localhost:5671/
PARLEY_AMQP_TLS_CA=$CERTS/ca.pem
PARLEY_AMQP_TLS_CERT=$CERTS/client.pem
PARLEY_AMQP_TLS_KEY=$CERTS/client.key
PARLEY_RABBITMQ_LOG=$RMQ_LOG
EOF
}

rabbitmq_status() { echo "pid $(rmq_pid), node $RMQ_NODE, 127.0.0.1:5672 amqp, 127.0.0.1:5671 amqps, log $RMQ_LOG"; }

# ---------------------------------------------------------------- kafka

kafka_pid() { read_pid "$KAFKA_DIR/kafka.pid"; }
kafka_running() { local p; p=$(kafka_pid); [[ -n $p ]] && pid_matches "$p" kafka.Kafka; }
kafka_ports_open() { port_open 9092 && port_open 9093 && port_open 9094 && port_open 9095; }
kafka_ready() {
    kafka_ports_open || return 1
    # The ports open before the broker has registered/unfenced itself; this
    # line comes after. Only lines written since our last start count.
    local from; from=$(read_pid "$KAFKA_DIR/log.offset"); from=${from:-0}
    # (process substitution, not a pipe: grep -q exiting early must not turn
    # tail's SIGPIPE into a failure under pipefail)
    grep -q 'Kafka Server started' < <(tail -c +"$((from + 1))" "$KAFKA_LOG" 2>/dev/null)
}

kafka_config() {
    mkdir -p "$KAFKA_DIR/data"
    local jaas_plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SASL_USER}=\"${KAFKA_SASL_PASSWORD}\";"
    local jaas_scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/services.sh; rewritten on every start.
# Single node, KRaft combined mode, static quorum of one voter.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9097
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093,SSL://127.0.0.1:9094,SASL_SSL://127.0.0.1:9095,CONTROLLER://127.0.0.1:9097
advertised.listeners=PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093,SSL://127.0.0.1:9094,SASL_SSL://127.0.0.1:9095
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data

# SASL: PLAIN users live in the JAAS config; SCRAM users were written into the
# metadata log by "storage format --add-scram".
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas_plain
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$jaas_scram
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas_plain
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas_scram

# TLS (SSL and SASL_SSL listeners): the server cert is valid for localhost and
# 127.0.0.1; client certs signed by the test CA are accepted, not required.
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/kafka-server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.ssl.ssl.client.auth=requested
listener.name.sasl_ssl.ssl.client.auth=requested

# Single-node test broker.
num.partitions=3
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a kill -9 the restarted controller keeps the dead incarnation's
# registration until its session expires (default 9s) and rejects the new one
# with DUPLICATE_BROKER_REGISTRATION; a shorter session makes "start kafka"
# after "kill kafka" a few seconds faster. Heartbeats stay 12x more frequent
# than the timeout so a loaded CI machine does not fence the broker (and if
# it ever were, it unfences itself on the next heartbeat; clients retry).
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=4
EOF
    cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# Generated by scripts/services.sh. Everything goes to stdout, which the script
# appends to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

# JVM flags for the broker and the storage tool: small heap, G1 with short
# pauses as in Kafka's own scripts, log4j2 config from the state dir.
# TieredStopAtLevel=1 (C1 JIT only) halves broker start time on 2 cores
# (~4.5s vs ~9s); peak throughput is lower but far above what tests need.
# No log4j shutdown hook, so the broker's own shutdown is still logged.
kafka_jvm_argv() {
    KAFKA_JVM=(java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false
        -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties"
        -cp "$(kafka_lib)/*")
}

kafka_format() {
    [[ -f $KAFKA_DIR/data/meta.properties ]] && return 0
    log "kafka: formatting storage (cluster id $KAFKA_CLUSTER_ID, SCRAM users)"
    rm -rf "$KAFKA_DIR/data"
    mkdir -p "$KAFKA_DIR/data"
    local KAFKA_JVM; kafka_jvm_argv
    "${KAFKA_JVM[@]}" kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$KAFKA_DIR/server.properties" \
        --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
        >"$KAFKA_DIR/format.log" 2>&1 </dev/null \
        || { rm -rf "$KAFKA_DIR/data"; fail kafka "$KAFKA_DIR/format.log" "storage format failed"; }
}

kafka_start() {
    if kafka_running && kafka_ready; then return 0; fi
    if ! kafka_running; then
        local p
        for p in 9092 9093 9094 9095 9097; do
            port_open $p && die "kafka: port $p is taken by a process not started by this script"
        done
        kafka_config
        kafka_format
        log "kafka: starting"
        touch "$KAFKA_LOG"
        stat -c %s "$KAFKA_LOG" >"$KAFKA_DIR/log.offset"
        local KAFKA_JVM; kafka_jvm_argv
        # setsid + all fds to files: see rabbitmq_start.
        (cd "$KAFKA_DIR" && exec setsid "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_DIR/server.properties") \
            >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
        echo $! >"$KAFKA_DIR/kafka.pid"
    fi
    local deadline=$(( $(now) + TIMEOUT ))
    until kafka_ready; do
        kafka_running || fail kafka "$KAFKA_LOG" "broker exited during startup"
        (( $(now) < deadline )) || fail kafka "$KAFKA_LOG" "not ready on 127.0.0.1:9092-9095 after ${TIMEOUT}s"
        sleep 0.2
    done
    log "kafka: ready on 127.0.0.1:9092 (plaintext), :9093 (sasl), :9094 (ssl), :9095 (sasl_ssl)"
}

kafka_stop() {
    kafka_running || return 0
    local pid; pid=$(kafka_pid)
    log "kafka: stopping"
    # SIGTERM runs Kafka's shutdown hook: controlled shutdown, clean log close.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" 60; then
        log "kafka: graceful stop timed out, killing"
        kafka_kill
    fi
    wait_ports_closed 30 9092 9093 9094 9095 9097 || die "kafka: ports still open after stop"
}

kafka_kill() {
    local pid; pid=$(kafka_pid)
    if [[ -z $pid ]] || ! pid_matches "$pid" kafka.Kafka; then log "kafka: not running"; return 0; fi
    log "kafka: kill -9 (pid $pid)"
    kill -9 "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 30 || die "kafka: pid $pid survived kill -9"
    wait_ports_closed 30 9092 9093 9094 9095 9097 || die "kafka: ports still open 30s after kill -9"
}

kafka_env() {
    cat <<EOF
PARLEY_KAFKA_SEEDS=127.0.0.1:9092
PARLEY_KAFKA_SASL_SEEDS=127.0.0.1:9093
PARLEY_KAFKA_SSL_SEEDS=127.0.0.1:9094
PARLEY_KAFKA_SASL_SSL_SEEDS=127.0.0.1:9095
PARLEY_KAFKA_SASL_USER=$KAFKA_SASL_USER
PARLEY_KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD
PARLEY_KAFKA_TLS_CA=$CERTS/ca.pem
PARLEY_KAFKA_TLS_CERT=$CERTS/client.pem
PARLEY_KAFKA_TLS_KEY=$CERTS/client.key
PARLEY_KAFKA_LOG=$KAFKA_LOG
EOF
}

kafka_status() { echo "pid $(kafka_pid), 127.0.0.1:9092 plaintext, :9093 sasl_plaintext, :9094 ssl, :9095 sasl_ssl, log $KAFKA_LOG"; }

# ---------------------------------------------------------------- commands

check_service() {
    case $1 in postgres|rabbitmq|kafka) ;; *) die "unknown service '$1' (want: ${ALL_SERVICES[*]})" ;; esac
}

# Install whatever the given services need. apt and Maven run side by side.
install_for() {
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    local need_certs='' need_kafka='' s
    for s; do
        [[ $s == postgres ]] || need_certs=1
        [[ $s != kafka ]] || need_kafka=1
    done
    local mvn_pid=''
    if [[ -n $need_kafka ]]; then ensure_kafka_jars & mvn_pid=$!; fi
    ensure_packages "$@"
    [[ -z $need_certs ]] || ensure_certs
    [[ -z $mvn_pid ]] || wait "$mvn_pid"
}

# print_env SERVICE...: `export NAME='value'` lines, safe for eval in bash and sh.
print_env() {
    local s line name value
    {
        echo "PARLEY_SERVICES_DIR=$STATE"
        echo "PARLEY_SERVICES_SCRIPT=$SCRIPT_PATH"
        for s; do "${s}_env"; done
    } | while IFS= read -r line; do
        name=${line%%=*}; value=${line#*=}
        printf "export %s='%s'\n" "$name" "${value//\'/\'\\\'\'}"
    done
}

# run_locked SERVICE ACTION: one service action under that service's lock.
run_locked() { ( lock_service "$1"; "$1_$2" ); }

# Run ACTION for each service in parallel; fail if any failed (each failure
# has already printed its own log tail).
parallel_each() {
    local action=$1; shift
    local -A pids=()
    local s rc=0
    for s; do run_locked "$s" "$action" & pids[$s]=$!; done
    for s; do wait "${pids[$s]}" || { rc=1; log "$s: $action failed"; }; done
    return $rc
}

main() {
    [[ $(id -u) == 0 ]] || die "must run as root (it installs packages and runs servers as other users)"
    local cmd=${1:-up}
    (($#)) && shift
    local services=("$@") s
    if [[ $cmd != rabbitmqctl ]]; then
        ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
        for s in "${services[@]}"; do check_service "$s"; done
    fi

    case $cmd in
        up)
            local t0=$SECONDS
            # On failure print `false` on stdout, so that `eval "$(services.sh up)"`
            # fails too under `set -e` (eval of an empty string would succeed).
            trap '[[ $? == 0 ]] || echo false' EXIT
            install_for "${services[@]}"
            parallel_each start "${services[@]}" || die "services failed to start; logs under $STATE"
            log "up in $((SECONDS - t0))s: ${services[*]}"
            print_env "${services[@]}"
            ;;
        env)
            print_env "${services[@]}"
            ;;
        down)
            parallel_each stop "${services[@]}"
            # epmd was started by RabbitMQ's VM; stop it too once no node is left.
            if [[ " ${services[*]} " == *" rabbitmq "* ]] && command -v epmd >/dev/null; then
                epmd -names 2>/dev/null | grep -q '^name ' || epmd -kill >/dev/null 2>&1 || true
            fi
            log "down: ${services[*]}"
            ;;
        start|stop|restart|kill)
            (($# == 1)) || die "usage: $0 $cmd <postgres|rabbitmq|kafka>"
            s=$1
            case $cmd in
                start) install_for "$s"; run_locked "$s" start ;;
                stop) run_locked "$s" stop ;;
                kill) run_locked "$s" kill ;;
                restart) install_for "$s"; ( lock_service "$s"; "${s}_stop"; "${s}_start" ) ;;
            esac
            ;;
        status)
            local rc=0
            for s in "${services[@]}"; do
                if "${s}_running" && "${s}_ready"; then
                    echo "$s: up ($("${s}_status"))"
                elif "${s}_running"; then
                    echo "$s: starting ($("${s}_status"))"; rc=1
                else
                    echo "$s: down"; rc=1
                fi
            done
            return $rc
            ;;
        rabbitmqctl)
            # rabbitmqctl against our node (name, cookie, user), e.g.
            #   scripts/services.sh rabbitmqctl list_queues name messages
            rabbitmqctl "${services[@]}"
            ;;
        -h|--help|help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SCRIPT_PATH" >&2
            ;;
        *) die "unknown command '$cmd' (up|env|down|status|start|stop|restart|kill)" ;;
    esac
}

main "$@"
