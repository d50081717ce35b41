# shellcheck shell=bash
# Root trees of the Debian releases gatewayc targets, built with mmdebstrap and cached
# outside the repository (they are hundreds of MB and take a minute each to make).
#
#   build   a directory to build the .deb in: that release's nodejs, node-gyp, headers
#           and debhelper, so the sd-notify addon matches the Node ABI the package runs on
#   runtime a tar of a bootable minimal system (systemd as init, the release's nodejs):
#           the system tests unpack it afresh for every container
#
# Sourced by scripts/build-deb; the system-test harness runs it as a command:
#   bash scripts/lib/roots.sh runtime|build bookworm|trixie   -> prints the cached path
# A root is rebuilt when its package list changes, or always with GATEWAYC_REFRESH_ROOTS=1.
# GATEWAYC_MIRROR overrides mmdebstrap's default mirror.

gatewayc_cache_dir() {
  printf '%s\n' "${GATEWAYC_CACHE:-/var/cache/gatewayc-dev}"
}

gatewayc_check_release() {
  case "$1" in
    bookworm|trixie) ;;
    *) echo "unknown release '$1' (bookworm or trixie)" >&2; return 2 ;;
  esac
}

# The packages of each root. The build list is debian/control's Build-Depends for that
# release (dpkg-checkbuilddeps checks it during every build) plus npm, which fetches the
# JavaScript dependencies before the offline package build starts.
gatewayc_root_packages() {
  local kind=$1 release=$2
  case "$kind" in
    build)
      local common=(nodejs npm node-gyp libsystemd-dev build-essential python3 debhelper
                    fakeroot pkg-config dh-sequence-installsysusers ca-certificates)
      case "$release" in
        # bookworm's systemd.pc (unit and generator directories) is in systemd itself
        bookworm) echo "${common[*]} libnode-dev systemd" ;;
        trixie) echo "${common[*]} libnode-dev systemd-dev" ;;
      esac ;;
    runtime)
      # procps: /bin/kill and ps, which a minbase system lacks
      echo "systemd systemd-sysv dbus nodejs ca-certificates procps" ;;
    *) echo "unknown root kind '$kind' (build or runtime)" >&2; return 2 ;;
  esac
}

# Runs mmdebstrap unless the cached root matches what is asked for; prints its path.
# Concurrent callers (parallel test files) wait on one lock per root.
gatewayc_root() {
  local kind=$1 release=$2
  gatewayc_check_release "$release" || return
  local packages; packages=$(gatewayc_root_packages "$kind" "$release") || return
  local cache; cache=$(gatewayc_cache_dir)
  mkdir -p "$cache"
  local out format
  case "$kind" in
    build) out="$cache/build-$release"; format=directory ;;
    runtime) out="$cache/runtime-$release.tar"; format=tar ;;
  esac
  local stamp="$out.stamp"
  local want="mmdebstrap --variant=minbase $release include=${packages// /,} mirror=${GATEWAYC_MIRROR:-default}"
  (
    flock 9
    if [ -e "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -z "${GATEWAYC_REFRESH_ROOTS:-}" ]; then
      exit 0
    fi
    echo "roots: building the $kind root of $release (mmdebstrap, about a minute)..." >&2
    rm -rf "$out" "$out.new" "$stamp"
    local mirror=()
    [ -n "${GATEWAYC_MIRROR:-}" ] && mirror=("$GATEWAYC_MIRROR")
    local start=$SECONDS
    mmdebstrap --quiet --variant=minbase --format="$format" --include="${packages// /,}" \
      "$release" "$out.new" "${mirror[@]}" >&2 || { rm -rf "$out.new"; exit 1; }
    mv "$out.new" "$out"
    printf '%s\n' "$want" >"$stamp"
    echo "roots: $kind root of $release ready in $((SECONDS - start)) s: $out" >&2
  ) 9>"$cache/.lock-$kind-$release" || return
  printf '%s\n' "$out"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ $# -ne 2 ]; then
    echo "usage: $0 build|runtime bookworm|trixie" >&2
    exit 2
  fi
  gatewayc_root "$1" "$2"
fi
