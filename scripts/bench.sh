#!/usr/bin/env bash
# The benchmark suite (make bench): builds keyconsole and the harness, makes
# sure wrk, sqlite3 and taskset are installed (apt-get when missing, or a
# clear failure), then runs bench/cmd/keyconsole-bench pinned to one core
# while the servers it starts are pinned to the other. Results go to
# bench/results/<date>.md and .json. Extra arguments go to the harness, e.g.
#   scripts/bench.sh -only token,list -runs 7
# Seeded databases are kept in $BENCH_WORK (default $TMPDIR/keyconsole-bench)
# and reused by later runs (-reseed seeds them again).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
work="${BENCH_WORK:-${TMPDIR:-/tmp}/keyconsole-bench}"
mkdir -p "$work" bin

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "bench: installing ${need[*]}" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "bench: missing ${need[*]}: install them (Debian/Ubuntu: apt-get install ${need[*]})" >&2
		exit 1
	fi
fi

cores=$(nproc)
if ((cores < 2)); then
	echo "bench: one CPU only: servers and load generators share it (figures are not comparable with pinned runs)" >&2
	server_cpu=0 load_cpu=0
else
	server_cpu="${BENCH_SERVER_CPU:-1}" load_cpu="${BENCH_LOAD_CPU:-0}"
fi

# The AWS KMS variant of the webhook benchmark runs a local-kms server.
bash scripts/local-kms.sh install

echo "bench: building (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
go build -o bin/keyconsole ./cmd/keyconsole
go build -o "$work/keyconsole-bench" ./bench/cmd/keyconsole-bench

exec taskset -c "$load_cpu" "$work/keyconsole-bench" run -bin bin/keyconsole -out bench/results -work "$work" \
	-server-cpu "$server_cpu" -load-cpu "$load_cpu" "$@"
