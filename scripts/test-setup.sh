#!/usr/bin/env bash
# Makes this machine ready for the whole test suite (docs/testing.md): installs the Debian
# packages the tests run, then starts and checks the services they use. `npm test` (the
# README's test command, which `.ci/run` calls) runs it first; it is idempotent and takes a
# second when everything is there. Installing needs root (or sudo).
set -euo pipefail

log() { printf '== %s\n' "$*"; }

# --- Debian packages ----------------------------------------------------------------------
PACKAGES=(
  chromium                          # the console's browser tests (Playwright drives Debian's Chromium)
  golang-go                         # builds the vSphere simulator (vcsim) the esxi driver is tested against …
  golang-github-vmware-govmomi-dev  # … from Debian's govmomi sources, in GOPATH mode
  qemu-system-x86                   # the qemu driver's tests run real VMs (KVM if usable, else TCG)
  qemu-utils                        # qemu-img: VM disks, and the OVAs the deploy tests build
  postgresql-client                 # pg_isready and psql: checks the PostgreSQL server below
  curl wget                         # resume signed downloads in the artifacts end-to-end test
  mosquitto-clients                 # mosquitto_sub/_pub: a foreign client against the broker's rules
  mosquitto                         # scale-out tests: an external MQTT broker (each test runs its own, on its own port)
  nginx-light                       # scale-out tests: the load balancer in front of several managers
  openssl                           # scale-out tests: certificates for the test broker's and nginx's TLS
  iptables iproute2                 # scale-out tests: cutting and shaping links between processes
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "missing Debian packages: ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Services -----------------------------------------------------------------------------
# PostgreSQL: the store suites and the PostgreSQL pass make (and drop) their own databases on
# this server. Machines of this project's kind run it on 127.0.0.1:5432 with trust auth; start
# it if it stopped.
PG_URL="${PALLAS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -d "$PG_URL"; then
  clusters=$(ls /etc/postgresql 2>/dev/null || true)
  if [ -z "$clusters" ]; then
    echo "no PostgreSQL server answers at $PG_URL and none is installed here; set PALLAS_TEST_PG_URL to one (trust or password in the URL)" >&2
    exit 1
  fi
  log "starting PostgreSQL $clusters"
  for v in $clusters; do pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
  for _ in $(seq 1 30); do pg_isready -q -d "$PG_URL" && break; sleep 1; done
fi
if ! psql "$PG_URL" -qAt -c 'select 1' >/dev/null; then
  echo "PostgreSQL at $PG_URL refuses the tests' connection (they create databases: the role needs CREATEDB)" >&2
  exit 1
fi
log "PostgreSQL answers at $PG_URL"
