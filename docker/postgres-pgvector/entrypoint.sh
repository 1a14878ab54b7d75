#!/bin/sh
# Entrypoint of the PostgreSQL + pgvector image built by `cargo xtask pg-image`.
#
# It follows the official `postgres` image where tests depend on it:
# - POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user name),
#   POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256);
# - on first start: initdb, a temporary server (its log on stdout), POSTGRES_DB created,
#   /docker-entrypoint-initdb.d/*.sql and *.sh run, temporary server stopped;
# - then the server runs in the foreground, listening on every address, its log on stderr.
# So "database system is ready to accept connections" appears on stdout (temporary server)
# and then on stderr (the real one), which is what testcontainers' Postgres module waits for.
# Arguments starting with `-` are passed to `postgres` (e.g. `-c fsync=off`, which also makes
# initdb skip syncing its files to disk).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi
shift

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

# As root: prepare the directories, then run this script again as `postgres`.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
AUTH="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$AUTH" != trust ]; then
		echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
		echo "  set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one)" >&2
		exit 1
	fi
	pwfile=
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		pwfile="$(mktemp)"
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	fi
	# A server started with `-c fsync=off` (as test containers are) gains nothing from initdb
	# syncing its files to disk, which takes seconds.
	nosync=
	case " $* " in *" fsync=off "*) nosync=--no-sync ;; esac
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
	initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} $nosync \
		--auth-local=trust --auth-host="$AUTH" --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-}
	[ -z "$pwfile" ] || rm -f "$pwfile"
	{
		echo
		echo "# docker entrypoint: clients over TCP from anywhere authenticate with $AUTH"
		echo "host all all all $AUTH"
	} >>"$PGDATA/pg_hba.conf"
	{
		echo
		echo "listen_addresses = '*'"
		if [ "$AUTH" = md5 ]; then echo "password_encryption = md5"; fi
	} >>"$PGDATA/postgresql.auto.conf"

	# A temporary server on the unix socket only, with the same arguments as the real one;
	# without -l its log goes to stdout.
	opts=
	for arg in "$@"; do
		opts="$opts '$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
	done
	pg_ctl -D "$PGDATA" -o "$opts -c listen_addresses=''" -w start

	export PGUSER="$POSTGRES_USER"
	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh) echo "running $f"; . "$f" ;;
		*.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
		*) [ ! -e "$f" ] || echo "ignoring $f" ;;
		esac
	done
	unset PGUSER

	pg_ctl -D "$PGDATA" -m fast -w stop
	echo
	echo "PostgreSQL init process complete; ready for start up."
	echo
fi

exec postgres "$@"
