# shellcheck shell=bash
# Root trees of the releases gatewayc is built for and tested on, built with mmdebstrap
# and cached outside the repository (they are hundreds of MB and take a minute each to make).
#
#   build   a directory to build the .deb in: that release's nodejs, node-gyp, headers
#           and debhelper, so the sd-notify addon matches the Node ABI the package runs on
#   runtime a tar of a bootable minimal system (systemd as init, the release's nodejs):
#           the system tests unpack it afresh for every container
#   user    a tar of what a new user of the README has: nodejs, npm, git and
#           ca-certificates, installed as `apt install` does (with their Recommends)
#
# Sourced by scripts/build-deb; the system-test harness runs it as a command:
#   bash scripts/lib/roots.sh build|runtime|user RELEASE   -> prints the cached path
# A root is rebuilt when its package list or archive changes, or always with
# GATEWAYC_REFRESH_ROOTS=1. The archive is the release's default (gatewayc_release_info)
# unless GATEWAYC_MIRROR, GATEWAYC_KEYRING or GATEWAYC_COMPONENTS say otherwise.

gatewayc_cache_dir() {
  printf '%s\n' "${GATEWAYC_CACHE:-/var/cache/gatewayc-dev}"
}

# The releases gatewayc knows, one line each:
#   <vendor> <number> <version suffix> <archive or "default"> <keyring or "default"> <components>
# "default" is mmdebstrap's own choice: Debian's archive and the keys apt trusts on the
# build machine. The suffix follows each vendor's convention for a package rebuilt for
# one of its releases: Debian's ~debNuM (as its stable updates), Ubuntu's ~ubuntuYY.MM.N
# (as PPAs do). Releases older than these have a nodejs older than 18, which gatewayc
# does not run on (debian/control: nodejs (>= 18)).
gatewayc_release_info() {
  case "$1" in
    bookworm) echo "debian 12 ~deb12u1 default default main" ;;
    trixie) echo "debian 13 ~deb13u1 default default main" ;;
    # Ubuntu's nodejs, node-gyp and libnode-dev are in universe.
    noble) echo "ubuntu 24.04 ~ubuntu24.04.1 http://archive.ubuntu.com/ubuntu /usr/share/keyrings/ubuntu-archive-keyring.gpg main,universe" ;;
    *) return 1 ;;
  esac
}

gatewayc_known_releases() {
  echo "bookworm trixie noble"
}

# A release name as apt and mmdebstrap take it (a code name such as noble, or a suite).
gatewayc_check_release_name() {
  if ! [[ "$1" =~ ^[a-z][a-z0-9.-]{0,40}$ ]]; then
    echo "'$1' is not a release name (a code name such as bookworm, trixie or noble)" >&2
    return 2
  fi
}

# Only the Debian releases have a runtime and a user root: the system tests boot those.
gatewayc_check_release() {
  case "$1" in
    bookworm|trixie) ;;
    *) echo "unknown release '$1' (bookworm or trixie)" >&2; return 2 ;;
  esac
}

# The archive settings in effect for a release: GATEWAYC_MIRROR, GATEWAYC_KEYRING and
# GATEWAYC_COMPONENTS when set, else the release's defaults. Prints three words.
gatewayc_archive() {
  local release=$1 info=() mirror=default keyring=default components=main
  if read -r -a info < <(gatewayc_release_info "$release"); then
    mirror=${info[3]} keyring=${info[4]} components=${info[5]}
  fi
  echo "${GATEWAYC_MIRROR:-$mirror} ${GATEWAYC_KEYRING:-$keyring} ${GATEWAYC_COMPONENTS:-$components}"
}

# Can mmdebstrap work with this release's archive and keyring from here? Checked before a
# root is (re)built, so that an archive out of reach is one clear sentence instead of
# mmdebstrap's apt errors, and a cached root is never removed for a build that cannot
# happen. Reads the release's InRelease with apt's own downloader, which follows the same
# apt settings (proxy, timeouts) as mmdebstrap.
gatewayc_check_archive() {
  local release=$1 mirror keyring components
  read -r mirror keyring components < <(gatewayc_archive "$release")
  if [ "$keyring" != default ] && [ ! -r "$keyring" ]; then
    echo "the keyring of $release's archive, $keyring, is not there: install the vendor's keyring package (ubuntu-keyring for Ubuntu) or name the file (build-deb --keyring FILE, or GATEWAYC_KEYRING)" >&2
    return 1
  fi
  local base=${mirror%/}
  [ "$base" != default ] || base=http://deb.debian.org/debian
  local url="$base/dists/$release/InRelease" tmp err
  tmp=$(mktemp -d)
  if ! err=$(cd "$tmp" && /usr/lib/apt/apt-helper -o Acquire::Retries=0 -o Acquire::http::Timeout=15 \
        -o Acquire::https::Timeout=15 download-file "$url" "$tmp/InRelease" 2>&1); then
    rm -rf "$tmp"
    err=$(printf '%s\n' "$err" | sed -n 's/^E: Failed to fetch [^ ]* *//p' | head -n 1)
    echo "the archive of $release is out of reach from this machine: $url cannot be fetched (${err:-no answer}); build on a machine that reaches it, or name a mirror of it (build-deb --mirror URL, or GATEWAYC_MIRROR)" >&2
    return 1
  fi
  rm -rf "$tmp"
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
        # bookworm's systemd.pc (unit and generator directories) is in systemd itself;
        # from systemd 253 on (trixie, noble and later) it is in systemd-dev
        bookworm) echo "${common[*]} libnode-dev systemd" ;;
        *) echo "${common[*]} libnode-dev systemd-dev" ;;
      esac ;;
    runtime)
      # procps: /bin/kill and ps, which a minbase system lacks
      echo "systemd systemd-sysv dbus nodejs ca-certificates procps" ;;
    user)
      echo "nodejs npm git ca-certificates" ;;
    *) echo "unknown root kind '$kind' (build, runtime or user)" >&2; return 2 ;;
  esac
}

# Runs mmdebstrap unless the cached root matches what is asked for; prints its path.
# Concurrent callers (parallel test files) wait on one lock per root.
gatewayc_root() {
  local kind=$1 release=$2
  if [ "$kind" = build ]; then
    gatewayc_check_release_name "$release" || return
  else
    gatewayc_check_release "$release" || return
  fi
  local packages; packages=$(gatewayc_root_packages "$kind" "$release") || return
  local mirror keyring components
  read -r mirror keyring components < <(gatewayc_archive "$release")
  local cache; cache=$(gatewayc_cache_dir)
  mkdir -p "$cache"
  local out format options=()
  case "$kind" in
    build) out="$cache/build-$release"; format=directory ;;
    runtime) out="$cache/runtime-$release.tar"; format=tar ;;
    user) out="$cache/user-$release.tar"; format=tar; options+=(--aptopt='Apt::Install-Recommends "true"') ;;
  esac
  [ "$keyring" = default ] || options+=(--keyring="$keyring")
  [ "$components" = main ] || options+=(--components="$components")
  local stamp="$out.stamp"
  # Spelled as before for the defaults, so that existing caches stay valid.
  local want="mmdebstrap --variant=minbase $release include=${packages// /,} mirror=$mirror"
  [ "$kind" != user ] || want+=" recommends"
  [ "$keyring" = default ] || want+=" keyring=$keyring"
  [ "$components" = main ] || want+=" components=$components"
  (
    flock 9
    if [ -e "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -z "${GATEWAYC_REFRESH_ROOTS:-}" ]; then
      exit 0
    fi
    gatewayc_check_archive "$release" || exit 1
    echo "roots: building the $kind root of $release (mmdebstrap, a minute or more)..." >&2
    rm -rf "$out" "$out.new" "$stamp"
    local source=()
    [ "$mirror" = default ] || source=("$mirror")
    local start=$SECONDS
    mmdebstrap --quiet --variant=minbase --format="$format" --include="${packages// /,}" "${options[@]}" \
      "$release" "$out.new" "${source[@]}" >&2 || { rm -rf "$out.new"; exit 1; }
    mv "$out.new" "$out"
    printf '%s\n' "$want" >"$stamp"
    echo "roots: $kind root of $release ready in $((SECONDS - start)) s: $out" >&2
  ) 9>"$cache/.lock-$kind-$release" || return
  printf '%s\n' "$out"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ $# -ne 2 ]; then
    echo "usage: $0 build|runtime|user RELEASE" >&2
    exit 2
  fi
  gatewayc_root "$1" "$2"
fi
