# lib.sh — shared by .ci/run and .ci/demo: install what is missing from
# Debian's archive, then configure and build with meson.
# Sourced, not run. Expects $top (the checkout) to be set.

# Build and test dependencies, all from Debian 12's archive.
PM_BUILD_DEPS="gcc libc6-dev meson ninja-build pkg-config libmodbus-dev libjson-c-dev
 libcurl4-openssl-dev zlib1g-dev libsystemd-dev libcmocka-dev libsqlite3-dev
 libmosquitto-dev"
PM_TEST_DEPS="python3 python3-yaml influxdb victoria-metrics zabbix-agent2 mbpoll openssl
 systemd util-linux procps man-db binutils sqlite3 tmux mosquitto mosquitto-clients
 prometheus prometheus-node-exporter"
# The Debian packages' test (tests/package/): building them (debian/control's
# Build-Depends beyond the above), lintian, and debootstrap for the scratch
# root they are installed in.
PM_PACKAGE_DEPS="build-essential dpkg-dev debhelper dh-python lintian debootstrap"
# The fuzz targets (tests/fuzz/): clang and its libFuzzer runtime.
PM_FUZZ_DEPS="clang-14 libclang-rt-14-dev"
PM_FUZZ_CC=clang-14

pm_missing_packages() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	echo "$missing"
}

# Installs the packages named that are not installed yet. Services shipped by
# them (influxdb, zabbix-agent2) are not started: the tests start their own on
# free loopback ports.
pm_install() {
	local missing
	missing=$(pm_missing_packages "$@")
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$missing — run as root, or: sudo apt-get install$missing" >&2
		return 1
	fi
	echo "installing:$missing"
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
	fi
	local rc=0
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] ||
	   ! apt-get install -y --no-install-recommends $missing >/tmp/pm-apt.log 2>&1; then
		apt-get update >/tmp/pm-apt.log 2>&1 &&
		apt-get install -y --no-install-recommends $missing >>/tmp/pm-apt.log 2>&1 || rc=$?
	fi
	[ "$made_policy" = 1 ] && rm -f "$policy"
	if [ "$rc" != 0 ]; then
		echo "apt-get failed (exit $rc); its log:" >&2
		tail -n 30 /tmp/pm-apt.log >&2
		return "$rc"
	fi
}

# pm_build DIR [meson options...]: configure (once) and build.
pm_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$top" "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log" >&2
			return 1
		}
	fi
	ninja -C "$dir" >"$dir.ninja.log" 2>&1 || {
		tail -n 60 "$dir.ninja.log" >&2
		return 1
	}
}
