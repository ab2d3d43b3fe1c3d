#!/usr/bin/env bash
# deps.sh installs the Debian packages the tests, the demo and the benchmarks use. It is
# idempotent and quiet: packages already present are skipped, and apt-get runs only when
# something is missing.
set -euo pipefail

pkgs=(
	unbound        # third-party DoT upstream (test/lab StartUnbound)
	nsd            # authoritative of test/conformance (test/kit StartNSD)
	knot-resolver  # kresd, a reference of test/conformance (test/kit StartKresd)
	dnsdist        # third-party DoT and DoH server of racetls's tests (test/kit StartDnsdist)
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
	iputils-ping   # ping across test/lossy's link
	binutils       # objdump for the preload ABI check
	libnss-mdns    # preload glibc oracle: mdns4_minimal on the hosts line
	libnss-myhostname # preload glibc oracle: myhostname on the hosts line
	ruby           # preload glibc oracle client
	perl
	musl-tools     # preload: libdnscache-musl.so and its musl-linked tests
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
# libnss-mdns and libnss-myhostname rewrite the host's hosts line on install;
# the tests bind their own nsswitch.conf, so the host's is put back as it was.
nss_saved=$(cat /etc/nsswitch.conf 2>/dev/null || true)
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$nss_saved" ] && [ "$(cat /etc/nsswitch.conf)" != "$nss_saved" ]; then
	printf '%s\n' "$nss_saved" | $SUDO tee /etc/nsswitch.conf >/dev/null
fi
# Debian starts unbound and dnsdist as system services on install; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
	$SUDO systemctl disable --now unbound >/dev/null 2>&1 || true
	$SUDO systemctl disable --now dnsdist >/dev/null 2>&1 || true
fi
