#!/usr/bin/env bash
# Build and install the pgvector extension for the local PostgreSQL server from Debian's
# `pgvector` source package (taken from Debian's next release, which packages 0.8.0).
#
# Idempotent: does nothing when vector.control is already installed for this server.
# The Debian mirror is read from the machine's own apt configuration; no host is written here.
#
# Usage: scripts/install-pgvector.sh            (as root, or with sudo available)
#   PG_CONFIG=/path/to/pg_config   choose the server (default: newest /usr/lib/postgresql/*/bin/pg_config)
#   PGVECTOR_SUITE=trixie          the Debian suite to take the source package from
set -euo pipefail

SUITE="${PGVECTOR_SUITE:-trixie}"
log() { printf 'install-pgvector: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): packages must be installed"
  SUDO="sudo"
fi

if [ -z "${PG_CONFIG:-}" ]; then
  PG_CONFIG=$(ls -1d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config || true)
fi
[ -n "$PG_CONFIG" ] && [ -x "$PG_CONFIG" ] || die "no PostgreSQL server found (install postgresql-15)"
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
SHAREDIR=$("$PG_CONFIG" --sharedir)

if [ -f "$SHAREDIR/extension/vector.control" ]; then
  log "pgvector already installed for PostgreSQL $PG_MAJOR ($SHAREDIR/extension/vector.control)"
  exit 0
fi

# Mirror: the first Debian archive URI of the machine's apt configuration (deb822 or one-line format).
MIRROR=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E '/debian/?$' | head -n 1
) || true
[ -n "$MIRROR" ] || die "no Debian archive found in the apt configuration (/etc/apt/sources.list*)"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"

log "installing build dependencies (postgresql-server-dev-$PG_MAJOR, dpkg-dev, build-essential)"
export DEBIAN_FRONTEND=noninteractive
need=()
for p in "postgresql-server-dev-$PG_MAJOR" dpkg-dev build-essential; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A private apt state, so the machine's own sources and lists stay untouched.
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/src"
printf 'deb-src [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" > "$WORK/sources.list"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$WORK/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o "APT::Sandbox::User=root"
)
log "fetching the pgvector source package from $SUITE"
apt-get "${APT_OPTS[@]}" update -qq
(cd "$WORK/src" && apt-get "${APT_OPTS[@]}" source -qq pgvector >/dev/null)
SRC=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
[ -n "$SRC" ] || die "apt-get source pgvector produced no source tree"
log "building $(basename "$SRC") against PostgreSQL $PG_MAJOR"
make -s -C "$SRC" USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS="" -j"$(nproc)" >/dev/null
$SUDO make -s -C "$SRC" USE_PGXS=1 PG_CONFIG="$PG_CONFIG" install >/dev/null
[ -f "$SHAREDIR/extension/vector.control" ] || die "build finished but vector.control is not in $SHAREDIR/extension"
log "installed pgvector $(sed -nE "s/^default_version = '([^']+)'/\1/p" "$SHAREDIR/extension/vector.control") for PostgreSQL $PG_MAJOR"
