#!/usr/bin/env bash
# CI step (after `make test`): builds every image, runs the whole system with docker-compose, drives one
# customer, event, portrait, recommendation and quote through the gateway, sends one campaign message to the
# sample partner container, and tears everything down.
# No registry is reachable here: base images are made with debootstrap + `docker import`, and the
# service images install from a wheelhouse built on the host (pip inside a build cannot verify TLS).
# Its own dockerd (own socket, data root, pid file; no iptables, no default bridge) is always stopped,
# and the bridges it made are removed, however the step ends. Skips only where docker.io cannot be installed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE="$ROOT/.cache"                      # inside the CI workspace: base rootfs and wheelhouse, reused by reruns
WHEELS_REL=.cache/wheelhouse              # inside the build context (.dockerignore lets it in)
WORK=$(mktemp -d /tmp/marksman-containers.XXXXXX)
export DOCKER_HOST="unix://$WORK/docker.sock"
PROJECT=marksmanci
GATEWAY_PORT=${MARKSMAN_CI_GATEWAY_PORT:-18080}
PROMETHEUS_PORT=${MARKSMAN_CI_PROMETHEUS_PORT:-19090}
PARTNER_PORT=${MARKSMAN_CI_PARTNER_PORT:-18090}
SAMPLE_PORT=${MARKSMAN_CI_SAMPLE_PORT:-18095}
SAMPLE_SECRET=${MARKSMAN_CI_SAMPLE_SECRET:-"ci$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"}
# Where campaign (inside the compose network) reaches the sample partner.
SAMPLE_ENDPOINT=${MARKSMAN_CI_SAMPLE_ENDPOINT:-http://partner-sample:8095/messages}
MIRROR=${MARKSMAN_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=marksman-ci/base:bookworm
# Debian's client, of the same version as its dockerd (another docker CLI on PATH may want buildx).
DOCKER=$(command -v /usr/bin/docker || command -v docker || echo docker)
STARTED=$(date +%s)
DOCKERD_PID=""
COMPOSE_UP=0

log() { echo "[containers +$(( $(date +%s) - STARTED ))s] $*"; }

compose() {
    docker-compose --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -p "$PROJECT" \
        --env-file "$WORK/.env" "$@"
}

links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | sort; }

cleanup() {
    local code=$?
    set +e
    if [ "$COMPOSE_UP" = 1 ]; then
        if [ "$code" != 0 ]; then
            log "failed: the services' logs follow"
            compose ps
            compose logs --no-color --tail=60
        fi
        compose down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
    fi
    # Anything still running from our folders (containerd, shims) is ours alone: stop it by pid.
    for proc in /proc/[0-9]*; do
        if tr '\0' ' ' < "$proc/cmdline" 2>/dev/null | grep -q -- "$WORK"; then
            kill -KILL "${proc#/proc/}" 2>/dev/null
        fi
    done
    # Network state: the bridges and veths this dockerd made (none existed before it started).
    if [ -f "$WORK/links.before" ]; then
        links | comm -13 "$WORK/links.before" - | grep -E '^(br-|veth|docker)' | while read -r link; do
            ip link delete "$link" 2>/dev/null
        done
    fi
    grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null; done
    rm -rf "$WORK"
    log "cleaned up (dockerd stopped, its bridges removed); exit $code"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_tools() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} = 0 ] && return 0
    log "installing ${missing[*]} (Debian)"
    if ! command -v apt-get >/dev/null; then
        echo "SKIP containers: no apt-get here, cannot install ${missing[*]}"; exit 0
    fi
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "SKIP containers: apt-get could not install ${missing[*]}"; exit 0
    fi
}

start_dockerd() {
    links > "$WORK/links.before"
    mkdir -p "$WORK/data" "$WORK/exec"
    # Images and containers in memory: faster layers, and the teardown is an unmount, not deleting
    # hundreds of thousands of files. A plain folder where tmpfs cannot be mounted.
    mount -t tmpfs -o size="${MARKSMAN_CI_DOCKER_TMPFS:-10g}" marksman-ci-docker "$WORK/data" 2>/dev/null \
        || log "no tmpfs for dockerd's data; using $WORK/data on disk"
    dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        --host "$DOCKER_HOST" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        > "$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do
        "$DOCKER" info >/dev/null 2>&1 && { log "dockerd $DOCKERD_PID ready"; return 0; }
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 1
    done
    tail -20 "$WORK/dockerd.log"
    echo "dockerd did not start"; return 1
}

base_image() {
    # Python 3.11 and the system libraries any service image asks for (SYSTEM_PACKAGES in compose).
    local include tarball
    include=$(printf 'python3,python3-venv,ca-certificates%s' "$(system_packages | sed 's/^/,/')")
    tarball="$CACHE/base-bookworm-$(echo "$include" | md5sum | cut -c1-8).tar"
    if [ ! -s "$tarball" ]; then
        log "debootstrap bookworm (minbase + $include) from $MIRROR"
        mkdir -p "$CACHE"
        debootstrap --variant=minbase --include="$include" bookworm \
            "$WORK/rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; return 1; }
        rm -rf "$WORK/rootfs"/usr/share/{doc,man,locale}/* "$WORK/rootfs"/var/cache/apt/*.bin \
            "$WORK/rootfs"/var/cache/apt/archives/*.deb "$WORK/rootfs"/var/lib/apt/lists/*
        tar -C "$WORK/rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        rm -rf "$WORK/rootfs"
    fi
    "$DOCKER" import "$tarball" "$BASE_IMAGE" >/dev/null
    log "base image $BASE_IMAGE imported ($(du -h "$tarball" | cut -f1) rootfs)"
}

wheelhouse() {
    log "wheelhouse: pip wheel of every extra on the host"
    mkdir -p "$ROOT/$WHEELS_REL"
    local pip=("$ROOT/.venv/bin/python" -m pip wheel --quiet --wheel-dir "$ROOT/$WHEELS_REL")
    # A rerun in the same workspace finds everything in the wheelhouse already: no index needed.
    "${pip[@]}" --no-index --find-links "$ROOT/$WHEELS_REL" "$ROOT[all]" "setuptools>=68" wheel 2>/dev/null \
        || "${pip[@]}" "$ROOT[all]" "setuptools>=68" wheel 2>&1 | grep -v -e '^WARNING: Location' -e BuildBackendWarning || true
    "${pip[@]}" --no-index --find-links "$ROOT/$WHEELS_REL" "$ROOT[all]" "setuptools>=68" wheel >/dev/null
    # The images build the package from the source they copy; a wheel of it here could be stale.
    rm -f "$ROOT/$WHEELS_REL"/marksman-*.whl
    log "wheelhouse ready ($(ls "$ROOT/$WHEELS_REL" | wc -l) wheels)"
}

build() {  # build NAME LOG docker-build-arguments...: quiet unless it fails
    local name=$1 log=$2
    shift 2
    if ! "$DOCKER" build "$@" > "$log" 2>&1; then
        tail -40 "$log"
        echo "building $name failed"
        return 1
    fi
}

infra_images() {  # PostgreSQL and Prometheus from Debian packages (the build reaches the mirror)
    build postgres "$WORK/build-postgres.log" --network host -t marksman-ci/postgres:15 \
        --build-arg BASE="$BASE_IMAGE" -f "$ROOT/deploy/ci/images/postgres.Dockerfile" "$ROOT/deploy/ci/images"
    build prometheus "$WORK/build-prometheus.log" --network host -t marksman-ci/prometheus:debian \
        --build-arg BASE="$BASE_IMAGE" -f "$ROOT/deploy/ci/images/prometheus.Dockerfile" "$ROOT/deploy/ci/images"
    log "PostgreSQL and Prometheus images built (Debian packages)"
}

service_images() {  # service_images NAME EXTRA [NAME EXTRA ...]: one after the other
    while [ $# -ge 2 ]; do
        build "$1" "$WORK/build-$1.log" --network none -t "marksman/$1:ci" --build-arg BASE="$BASE_IMAGE" \
            --build-arg SERVICE="$1" --build-arg EXTRA="$2" --build-arg WHEELS="$WHEELS_REL" \
            --build-arg SYSTEM_PACKAGES="$(grep "^$1 " "$WORK/args.txt" | cut -d' ' -f3 | tr ',' ' ' | sed 's/^-$//')" \
            "$ROOT"
        log "marksman/$1:ci built ($("$DOCKER" image inspect --format '{{.Size}}' "marksman/$1:ci" \
            | awk '{printf "%d MB", $1/1e6}'))"
        shift 2
    done
}

build_args() {  # each service's build arguments as docker-compose.yml gives them: NAME EXTRA PACKAGES
    compose config | "$ROOT/.venv/bin/python" -c '
import sys, yaml
for name, spec in yaml.safe_load(sys.stdin)["services"].items():
    if "build" in spec:
        args = spec["build"]["args"]
        print(name, args["EXTRA"], args.get("SYSTEM_PACKAGES", "").replace(" ", ",") or "-")'
}

system_packages() {  # the system packages the service images need, comma-separated
    build_args | awk '$3 != "-" {print $3}' | tr '\n' ',' | sed 's/,$//'
}

build_images() {
    build_args > "$WORK/args.txt"
    cut -d' ' -f1,2 "$WORK/args.txt" > "$WORK/services.txt"
    # The first service image makes the shared dependency layer the others reuse; then two builds at a
    # time (most of a build is unpacking wheels, which does not fill both cores), beside the Debian images.
    read -r first_name first_extra < "$WORK/services.txt"
    service_images "$first_name" "$first_extra"
    local jobs=() rest
    infra_images & jobs+=($!)
    rest=$(tail -n +2 "$WORK/services.txt" | tr '\n' ' ')
    # shellcheck disable=SC2086
    service_images $(echo $rest | awk '{for (i = 1; i <= NF; i += 4) printf "%s %s ", $i, $(i+1)}') & jobs+=($!)
    # shellcheck disable=SC2086
    service_images $(echo $rest | awk '{for (i = 3; i <= NF; i += 4) printf "%s %s ", $i, $(i+1)}') & jobs+=($!)
    local failed=0
    for job in "${jobs[@]}"; do wait "$job" || failed=1; done
    return "$failed"
}

bring_up() {
    # docker-compose 1.29 gives up on a dependency still starting after its own wait: start again
    # (idempotent) until every service runs, then wait for every health check.
    local attempt
    for attempt in 1 2 3 4 5 6; do
        if compose up -d --no-build > "$WORK/up.log" 2>&1; then
            log "docker-compose up: $(compose ps --services | tr '\n' ' ')"
            wait_healthy
            return
        fi
        log "docker-compose up, attempt $attempt: $(grep -m1 -i error "$WORK/up.log")"
        sleep 10
    done
    cat "$WORK/up.log"
    return 1
}

wait_healthy() {
    local deadline=$(( $(date +%s) + 300 )) unhealthy
    while :; do
        unhealthy=$(compose ps -q | xargs "$DOCKER" inspect --format \
            '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
            | grep -v ' healthy$' || true)
        [ -z "$unhealthy" ] && { log "every container is healthy"; return 0; }
        if [ "$(date +%s)" -gt "$deadline" ]; then echo "not healthy in time: $unhealthy"; return 1; fi
        sleep 3
    done
}

call() {  # call METHOD PATH KEY [BODY]: prints the body, fails on an HTTP error
    curl --silent --show-error --fail-with-body --max-time 120 -X "$1" -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' ${4:+--data "$4"} "http://127.0.0.1:$GATEWAY_PORT$2"
}

drive() {
    local keys platform admin profile answer
    keys=$(compose exec -T gateway cat /var/lib/marksman/api-keys.txt)
    platform=$(echo "$keys" | sed -n 's/^platform=//p')
    admin=$(echo "$keys" | sed -n 's/^admin=//p')
    [ -n "$platform" ] && [ -n "$admin" ] || { echo "no API keys from the gateway"; return 1; }
    call POST /v1/customers "$platform" \
        '{"customers":[{"customer_id":"ci-1","region":"United Kingdom"},{"customer_id":"ci-2","region":"France"}]}' >/dev/null
    answer=$(call POST /v1/events "$platform" '{"events":[
        {"event_id":"ci-o1","type":"order","customer_id":"ci-1","occurred_at":"2011-12-01T10:00:00Z","currency":"GBP",
         "payment_channel":"alipay","sales_channel":"app","lines":[{"sku":"85123A","quantity":2,"unit_price_minor":255,
         "list_price_minor":255,"category":"Home"}]},
        {"event_id":"ci-o2","type":"order","customer_id":"ci-2","occurred_at":"2011-12-02T10:00:00Z","currency":"GBP",
         "lines":[{"sku":"22423","quantity":1,"unit_price_minor":1275,"list_price_minor":1275,"category":"Kitchen"}]}]}')
    echo "$answer" | grep -q '"accepted":2' || { echo "events not accepted: $answer"; return 1; }
    for _ in $(seq 1 30); do
        profile=$(call GET /v1/customers/ci-1/profile "$platform")
        echo "$profile" | grep -q '"frequency":1' && break
        sleep 1
    done
    echo "$profile" | grep -q '"frequency":1' || { echo "portrait never showed the order: $profile"; return 1; }
    log "customer, events and portrait through the gateway: ok"
    if compose config --services | grep -qx recommend; then
        # Before any model, recommend ranks popular items from the orders; it re-reads them within 5 s
        # of an earlier "no orders yet" (409), e.g. the gateway's own question at its start.
        for _ in $(seq 1 10); do
            answer=$(call GET "/v1/customers/ci-1/recommendations?k=3" "$platform" 2>&1) || true
            echo "$answer" | grep -q '"sku"' && break
            sleep 1
        done
        echo "$answer" | grep -q '"sku"' || { echo "no recommendation: $answer"; return 1; }
        log "recommendation through the gateway: ok ($(echo "$answer" | head -c 160))"
    fi
    call PUT /v1/pricing/rule-set "$admin" '{"currency":"GBP","max_total_discount_bp":3000,"rules":[]}' >/dev/null
    answer=$(call POST /v1/quotes "$platform" '{"customer_id":"ci-1","currency":"GBP","sales_channel":"app",
        "payment_channel":"alipay","lines":[{"sku":"85123A","list_price_minor":255,"quantity":2}]}')
    echo "$answer" | grep -q '"final_minor":510' || { echo "unexpected quote: $answer"; return 1; }
    log "price quote through the gateway: ok"
    campaign_through_sample "$platform" "$admin"
    for _ in $(seq 1 40); do
        answer=$(curl --silent "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets?state=active")
        if echo "$answer" | grep -q '"health":"up"' && ! echo "$answer" | grep -q '"health":"\(down\|unknown\)"'; then
            log "Prometheus scrapes every service: ok"; return 0
        fi
        sleep 3
    done
    echo "Prometheus targets not all up: $answer"; return 1
}

json_field() {  # json_field NAME: the top-level field of the JSON object on stdin
    "$ROOT/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

campaign_through_sample() {  # campaign_through_sample PLATFORM ADMIN: one message to the sample partner container
    local platform=$1 admin=$2 answer cid state
    call POST /v1/customers "$platform" '{"customers":[{"customer_id":"ci-m1","name":"CI Customer",
        "email":"ci-m1@example.com","region":"Spain",
        "consents":[{"channel":"email","granted":true,"changed_at":"2011-01-01T00:00:00Z"}]}]}' >/dev/null
    call POST /v1/segments "$admin" '{"name":"ci-spain","rule":"region == \"Spain\""}' >/dev/null
    # Segment reads the portrait once profile's updater has written it: sync and refresh until it is there.
    for _ in $(seq 1 30); do
        call POST /v1/admin/segments/sync "$admin" >/dev/null
        # 409 while no portrait is cached yet
        answer=$(call POST /v1/segments/ci-spain/refresh "$admin" 2>&1) || true
        echo "$answer" | grep -q '"size":1,' && break
        sleep 1
    done
    echo "$answer" | grep -q '"size":1,' || { echo "segment ci-spain never held ci-m1: $answer"; return 1; }
    call POST /v1/partners "$admin" "{\"name\":\"ci-sample\",\"channel\":\"email\",\"mode\":\"push\",
        \"endpoint\":\"$SAMPLE_ENDPOINT\",\"secret\":\"$SAMPLE_SECRET\"}" >/dev/null
    cid=$(call POST /v1/campaigns "$admin" '{"name":"ci","goal":"retention","segment":"ci-spain","currency":"GBP",
        "channels":[{"channel":"email","partner":"ci-sample","cost_per_contact_minor":5}],
        "template":"Hello {name}"}' | json_field id)
    call POST "/v1/campaigns/$cid/launch" "$admin" >/dev/null
    for _ in $(seq 1 60); do
        state=$(call GET "/v1/campaigns/$cid" "$admin" | json_field state)
        [ "$state" = completed ] && break
        sleep 1
    done
    [ "$state" = completed ] || { echo "campaign $cid is $state, not completed"; return 1; }
    answer=$(curl --silent --show-error --fail --max-time 30 "http://127.0.0.1:$SAMPLE_PORT/messages?campaign_id=$cid")
    echo "$answer" | grep -q '"customer_id":"ci-m1"' || { echo "the sample partner did not get the message: $answer"; return 1; }
    log "campaign $cid through the sample partner container: ok ($(echo "$answer" | head -c 160))"
}

main() {
    install_tools
    {
        echo "POSTGRES_USER=marksman"
        echo "POSTGRES_PASSWORD=ci$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
        echo "GRAFANA_ADMIN_PASSWORD=unused-in-ci"
        echo "MARKSMAN_TAG=ci"
        echo "MARKSMAN_POSTGRES_IMAGE=marksman-ci/postgres:15"
        echo "MARKSMAN_PROMETHEUS_IMAGE=marksman-ci/prometheus:debian"
        echo "MARKSMAN_GATEWAY_PUBLISH=127.0.0.1:$GATEWAY_PORT"
        echo "MARKSMAN_PROMETHEUS_PUBLISH=127.0.0.1:$PROMETHEUS_PORT"
        echo "MARKSMAN_CAMPAIGN_PARTNER_PUBLISH=127.0.0.1:$PARTNER_PORT"
        echo "MARKSMAN_PARTNER_SAMPLE_PUBLISH=127.0.0.1:$SAMPLE_PORT"
        echo "MARKSMAN_PARTNER_SAMPLE_SECRET=$SAMPLE_SECRET"
        echo "MARKSMAN_AS_OF=2011-12-10T00:00:00Z"
    } > "$WORK/.env"
    start_dockerd
    base_image &
    local base_job=$!
    wheelhouse
    wait "$base_job"
    build_images
    COMPOSE_UP=1
    bring_up
    drive
    compose down -v --remove-orphans >/dev/null 2>&1
    COMPOSE_UP=0
    log "docker-compose down -v: done; the container step took $(( $(date +%s) - STARTED )) s"
}

main "$@"
