#!/usr/bin/env bash
# Installs and starts the real services the test suite talks to (loopback only):
# SoftHSM2 (PKCS#11), python3-securesystemslib (independent DSSE verifier),
# PostgreSQL 15, the OCI registry and skopeo. Idempotent and quick when all is
# present; `npm test` runs it first so a fresh machine needs nothing else.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in softhsm2 python3-securesystemslib postgresql-15 docker-registry skopeo sqlite3 openssl; do
  have "$pkg" || need+=("$pkg")
done

if ((${#need[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
      echo "services: missing packages ${need[*]} and no root to install them" >&2
      exit 1
    fi
  fi
  echo "services: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null || true
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL: start the Debian cluster if it is not running yet.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_lsclusters -h 2>/dev/null | grep -q ' online'; then
  if [ "$(id -u)" -eq 0 ]; then pg_ctlcluster 15 main start || true; else sudo -n pg_ctlcluster 15 main start || true; fi
fi

# PostgreSQL: a login role named after the OS user running the tests, which may
# create databases. Debian's pg_hba.conf grants it peer authentication over the
# Unix socket, so tests connect with no password and the repo holds no secret.
# Each test file then creates and drops its own throwaway database.
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -n -u postgres -- "$@"; fi
}
if command -v psql >/dev/null 2>&1; then
  me="$(id -un)"
  for _ in $(seq 1 50); do as_postgres psql -XAtqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
  role_exists() { as_postgres psql -XAtq -v me="$me" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'me'" 2>/dev/null | grep -q 1; }
  if ! role_exists; then
    # \gexec runs the generated CREATE ROLE only when the role is missing; a
    # concurrent run may win the race, so check again before complaining.
    as_postgres psql -XAtq -v me="$me" >/dev/null 2>&1 <<<"SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'me') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'me') \gexec" || true
    role_exists || echo "services: could not create the PostgreSQL role $me; the PostgreSQL tests will fail" >&2
  fi
fi
exit 0
