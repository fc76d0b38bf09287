#!/usr/bin/env bash
# Builds the images that run beside dust-serve replicas in a fleet, from this machine's Debian packages (no
# container registry is reachable; same approach as build-base.sh, see deploy/docker/rootfs.sh):
#
#   dust-serve-lb:haproxy       HAProxy (apt: haproxy) and the shared libraries it loads, user "haproxy" (uid
#                               10002). Mount a config at /usr/local/etc/haproxy/haproxy.cfg, e.g.
#                               deploy/lb/haproxy.cfg with DUST_LB_BIND and DUST_REPLICA_1..3 set.
#   dust-serve-postgres:15      PostgreSQL 15 (apt: postgresql-15), user "postgres" (uid 10003), /bin/sh for its
#                               entrypoint: on first start initdb (UTF-8, C locale) and a database
#                               $POSTGRES_DB (default dust) owned by $POSTGRES_USER (default dust), password
#                               $POSTGRES_PASSWORD (scram-sha-256 from other hosts; required). Listens on 5432.
#                               No JIT (LLVM is left out), data in /var/lib/postgresql/data.
#
# Idempotent: an image that already exists is left alone (--force rebuilds both).
# Usage: deploy/docker/build-fleet-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/docker/rootfs.sh
. deploy/docker/rootfs.sh

LB_TAG=dust-serve-lb:haproxy
PG_TAG=dust-serve-postgres:15
UID_HAPROXY=10002
UID_POSTGRES=10003
PG_VERSION=15
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_LIB=/usr/lib/postgresql/$PG_VERSION/lib
PG_SHARE=/usr/share/postgresql/$PG_VERSION
force=0
[ "${1:-}" = "--force" ] && force=1

work=$(mktemp -d /tmp/dust-fleet-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$force" = 1 ] || ! have_image "$LB_TAG"; then
  HAPROXY=$(command -v haproxy) || { echo "build-fleet-images.sh: haproxy not installed (apt-get install haproxy)" >&2; exit 1; }
  echo "== $LB_TAG ($("$HAPROXY" -v | head -n 1))"
  root="$work/lb"
  make_skeleton "$root" haproxy "$UID_HAPROXY"
  copy_with_libs "$root" "$(readlink -f "$HAPROXY")"
  [ "$(readlink -f "$HAPROXY")" = /usr/sbin/haproxy ] || { mkdir -p "$root/usr/sbin"; ln -sf "$(readlink -f "$HAPROXY")" "$root/usr/sbin/haproxy"; }
  mkdir -p "$root/usr/local/etc/haproxy"
  import_rootfs "$root" "$LB_TAG" "HAProxy from the host's Debian package" \
    --change "USER $UID_HAPROXY" \
    --change 'ENV DUST_LB_BIND=0.0.0.0:50051 DUST_LB_STATS_BIND=0.0.0.0:8404' \
    --change 'EXPOSE 50051 8404' \
    --change 'ENTRYPOINT ["/usr/sbin/haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
else
  echo "image present: $LB_TAG"
fi

if [ ! -x "$PG_BIN/postgres" ]; then
  echo "WARNING: $PG_BIN/postgres missing (apt-get install postgresql-$PG_VERSION): $PG_TAG not built" >&2
elif [ "$force" = 1 ] || ! have_image "$PG_TAG"; then
  echo "== $PG_TAG ($("$PG_BIN/postgres" --version))"
  root="$work/pg"
  make_skeleton "$root" postgres "$UID_POSTGRES"
  for bin in postgres initdb pg_ctl pg_isready psql; do copy_with_libs "$root" "$PG_BIN/$bin"; done
  # Server modules (plpgsql, encodings, snowball, ...) without the LLVM JIT, which would pull in all of LLVM.
  for mod in "$PG_LIB"/*.so; do
    case "$mod" in */llvmjit*) continue ;; esac
    copy_with_libs "$root" "$mod"
  done
  mkdir -p "$root$PG_SHARE"
  cp -a "$PG_SHARE/." "$root$PG_SHARE/"
  # Debian builds PostgreSQL with the system time zone database.
  mkdir -p "$root/usr/share/zoneinfo"
  cp -a /usr/share/zoneinfo/. "$root/usr/share/zoneinfo/"
  copy_with_libs "$root" "$(readlink -f /bin/sh)"
  [ -e "$root/bin/sh" ] || ln -s "$(basename "$(readlink -f /bin/sh)")" "$root/usr/bin/sh"
  mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
  chown -R "$UID_POSTGRES:$UID_POSTGRES" "$root/var/lib/postgresql" "$root/var/run/postgresql"
  chmod 700 "$root/var/lib/postgresql/data"
  mkdir -p "$root/usr/local/bin"
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<EOF
#!/bin/sh
# First start: a cluster in \$PGDATA with the user and database the environment names; then the server.
set -eu
: "\${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user=\${POSTGRES_USER:-dust}
db=\${POSTGRES_DB:-dust}
if [ ! -s "\$PGDATA/PG_VERSION" ]; then
  # The image has a shell and PostgreSQL, no coreutils: the password goes to initdb through a pipe.
  printf '%s\n' "\$POSTGRES_PASSWORD" | $PG_BIN/initdb -D "\$PGDATA" -U "\$user" --pwfile=/dev/stdin \\
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >/dev/null
  echo "host all all all scram-sha-256" >>"\$PGDATA/pg_hba.conf"
  if [ "\$db" != postgres ]; then
    echo "CREATE DATABASE \\"\$db\\" OWNER \\"\$user\\"" | $PG_BIN/postgres --single -D "\$PGDATA" postgres >/dev/null
  fi
fi
exec $PG_BIN/postgres -D "\$PGDATA" -c listen_addresses='*' -c jit=off "\$@"
EOF
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$root" "$PG_TAG" "PostgreSQL $PG_VERSION from the host's Debian package" \
    --change "USER $UID_POSTGRES" \
    --change 'ENV PGDATA=/var/lib/postgresql/data PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
else
  echo "image present: $PG_TAG"
fi
