# Shared by scripts/run, scripts/test and scripts/bench: installing what is
# missing and building. Sourced, not run.

MT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages moontask needs to build, run and test.
MT_PACKAGES=(cmake gcc make pkg-config liblua5.4-dev lua5.4 libpq-dev
             libuv1-dev lua-cjson lua-busted postgresql postgresql-client)

mt_log() { printf '==> %s\n' "$*" >&2; }

mt_install_deps() {
  local missing=()
  for pkg in "${MT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "moontask needs these Debian packages; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  mt_log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# mt_build DIR [cmake options...]
mt_build() {
  local dir=$1
  shift
  mt_log "building in $dir"
  cmake -S "$MT_ROOT" -B "$MT_ROOT/$dir" "$@" >/dev/null
  cmake --build "$MT_ROOT/$dir" -j"$(nproc)" >/dev/null
}
