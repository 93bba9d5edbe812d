#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short fixed time each.
# Targets are discovered with `go test -list 'Fuzz.*'`, so a new Fuzz*
# function is fuzzed without editing this script. The seed corpora under
# testdata/fuzz/ also run as plain tests in `make test`.
#
#   FUZZTIME=15s   time per target (go test -fuzztime syntax)
#   FUZZ_PKGS=./... packages to search
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-15s}"
pkgs="${FUZZ_PKGS:-./...}"

# `go test -list` prints a package's matching names, then "ok <pkg> ...".
targets=()
pending=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) pending+=("$line") ;;
	"ok "*)
		pkg=$(awk '{print $2}' <<<"$line")
		for name in "${pending[@]}"; do targets+=("$pkg $name"); done
		pending=()
		;;
	esac
done < <(go test -list 'Fuzz.*' $pkgs)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no Fuzz targets found in $pkgs" >&2
	exit 1
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "==> $pkg $name"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		echo "fuzz: $pkg $name FAILED (a failing input is saved under the package's testdata/fuzz/$name/)" >&2
		failed=1
	fi
done
exit $failed
