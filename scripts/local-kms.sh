#!/usr/bin/env bash
# local-kms: a KMS-compatible server for tests and local development.
#
#   scripts/local-kms.sh install      install .bin/local-kms if it is missing
#   scripts/local-kms.sh run [PORT]   install if needed, then run it in the
#                                     foreground (default port 4599), seeded
#                                     from testdata/kms-seed.yaml, with a fresh
#                                     temporary data directory
#
# local-kms listens on every interface: point clients at 127.0.0.1 only, e.g.
#   KEYCONSOLE_KMS_PROVIDER=aws KEYCONSOLE_KMS_KEY_ID=alias/keyconsole \
#   KEYCONSOLE_KMS_REGION=us-gov-west-1 KEYCONSOLE_KMS_ENDPOINT=http://127.0.0.1:4599 \
#   AWS_ACCESS_KEY_ID=AKIALOCALKMS00000000 \
#   AWS_SECRET_ACCESS_KEY=localkmslocalkmslocalkmslocalkmslocalkms
set -euo pipefail

version="v0.0.0-20260228092603-2a5e92d09ab6"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.bin/local-kms"

install_local_kms() {
	if [[ -x "$bin" ]]; then
		return 0
	fi
	echo "installing local-kms $version into $repo/.bin" >&2
	mkdir -p "$repo/.bin"
	# The server is not ours to run in FIPS-only mode; build it plainly.
	env -u GODEBUG -u GOFIPS140 GOBIN="$repo/.bin" \
		go install "github.com/nsmithuk/local-kms@$version"
}

case "${1:-install}" in
install)
	install_local_kms
	;;
run)
	install_local_kms
	port="${2:-4599}"
	data="$(mktemp -d)"
	trap 'rm -rf "$data"' EXIT
	echo "local-kms on http://127.0.0.1:$port (data in $data)" >&2
	env -u GODEBUG PORT="$port" KMS_REGION=us-gov-west-1 KMS_ACCOUNT_ID=111122223333 \
		KMS_SEED_PATH="$repo/testdata/kms-seed.yaml" KMS_DATA_PATH="$data" "$bin"
	;;
*)
	echo "usage: $0 [install|run [PORT]]" >&2
	exit 2
	;;
esac
