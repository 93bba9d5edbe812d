#!/usr/bin/env bash
# test-deps: everything the test suite needs, installed only where missing.
#
#   scripts/test-deps.sh          what `make test` and `make test-long` need
#   scripts/test-deps.sh race     the same plus a C compiler for `go test -race`
#
# Debian packages (one apt transaction, so a refusal installs nothing):
#   chromium         browser scenarios in e2e
#   poppler-utils    pdftotext/pdftoppm/pdfinfo read the PDF exports
#   openssh-client   sftp and ssh-keygen against the built-in SFTP server
#   openssh-server   sshd for the AuthorizedKeysCommand test
#   postgresql-client, postgresql   only when no server answers on 127.0.0.1:5432
#   gcc              only for `race`
# Services: PostgreSQL on 127.0.0.1:5432 (the machine's cluster, or a private
# one with trust auth under /tmp when there is none). Go tools: local-kms, the
# KMS-compatible test server (scripts/local-kms.sh).
#
# Quiet when nothing is missing; idempotent. Without root or apt-get it names
# the packages to install and exits non-zero before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

pg_host=127.0.0.1
pg_port=5432

have() { command -v "$1" >/dev/null 2>&1; }
# A server answers: pg_isready when the client is installed, else a TCP connect.
pg_up() {
	if have pg_isready; then
		pg_isready -q -h "$pg_host" -p "$pg_port"
	else
		(exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null
	fi
}
pg_server_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

need=()
have chromium || have chromium-browser || [ -n "${KEYCONSOLE_CHROMIUM:-}" ] || need+=(chromium)
for tool in pdftotext pdftoppm pdfinfo; do
	have "$tool" || { need+=(poppler-utils); break; }
done
{ have sftp && have ssh-keygen; } || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have psql || need+=(postgresql-client)
if ! pg_up && [ -z "$(pg_server_bin)" ]; then
	need+=(postgresql)
fi
if [ "${1:-}" = race ]; then
	have gcc || need+=(gcc)
fi

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
		echo "test-deps: the tests need Debian packages this user cannot install: run as root, or install them with:" >&2
		echo "  apt-get install -y --no-install-recommends ${need[*]}" >&2
		exit 1
	fi
	echo "test-deps: installing ${need[*]} (once; the first run takes a few minutes)" >&2
	apt-get update -qq
	if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/keyconsole-test-deps-apt.log 2>&1; then
		cat /tmp/keyconsole-test-deps-apt.log >&2
		echo "test-deps: apt-get install ${need[*]} failed (log above)" >&2
		exit 1
	fi
fi

if ! pg_up; then
	if have pg_ctlcluster && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
	fi
fi
if ! pg_up; then
	# No cluster answers: run a private one with trust auth for the tests.
	pgbin=$(pg_server_bin)
	pgdata=/tmp/keyconsole-test-pg
	echo "test-deps: starting a private PostgreSQL on $pg_host:$pg_port (data in $pgdata)" >&2
	rm -rf "$pgdata" && mkdir -p "$pgdata"
	run_pg() { "$@"; }
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres "$pgdata"
		run_pg() { su postgres -c "$(printf '%q ' "$@")"; }
	fi
	run_pg "$pgbin/initdb" -A trust -U postgres -D "$pgdata" >/dev/null
	run_pg "$pgbin/pg_ctl" -D "$pgdata" -o "-h $pg_host -p $pg_port -k /tmp" -l "$pgdata/log" start -w >/dev/null
fi
for _ in $(seq 1 30); do pg_up && break; sleep 1; done
if ! pg_up; then
	echo "test-deps: PostgreSQL does not answer on $pg_host:$pg_port" >&2
	exit 1
fi

bash scripts/local-kms.sh install

if [ "$(id -u)" -ne 0 ]; then
	echo "test-deps: not root, so the stock-sshd test (it runs sshd and adds a system user) will be skipped" >&2
fi
