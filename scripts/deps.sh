#!/usr/bin/env bash
# deps.sh installs the Debian packages the tests, the demo and the benchmarks use. It is
# idempotent and quiet: packages already present are skipped, and apt-get runs only when
# something is missing.
set -euo pipefail

pkgs=(
	unbound        # third-party DoT upstream (test/lab StartUnbound)
	nsd            # authoritative of test/conformance (test/kit StartNSD)
	knot-resolver  # kresd, a reference of test/conformance (test/kit StartKresd)
	knot-dnsutils  # kdig
	dnsutils       # dig
	dnsperf        # dnsperf, resperf
	socat
	valgrind       # preload memory checks, callgrind
	clang          # preload libFuzzer target, ASan/UBSan build
	libclang-rt-14-dev
	curl
	etcd-server    # etcd for the control-plane fixture (test/kit/controlplane)
	busybox-static # build/k8s runs the DaemonSet init script with a real busybox
	python3
	iproute2       # ip netns for the glibc oracle tests
	util-linux     # unshare
	binutils       # objdump for the preload ABI check
	procps
	make
	gcc
	libc6-dev
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts unbound as a system service on install; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
	$SUDO systemctl disable --now unbound >/dev/null 2>&1 || true
fi
