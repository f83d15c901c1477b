# Shared by scripts/run, scripts/test and scripts/bench: installing what is
# missing and building. Sourced, not run.

MT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages moontask needs to build, run and test.
# clang-format checks the committed .clang-format in scripts/test; locales
# provides the locale below; the AWS tests' fake servers are python3
# scripts, and one serves TLS with a certificate made by openssl.
MT_PACKAGES=(cmake gcc make pkg-config liblua5.4-dev lua5.4 libpq-dev
             libuv1-dev libpcre2-dev libcurl4-openssl-dev libssl-dev
             lua-busted postgresql postgresql-client clang-format locales
             python3 openssl)

# A locale whose decimal point is ',', for the test that JSON numbers read
# and write the same under any LC_NUMERIC (tests/unit/test_json_agree.c).
MT_TEST_LOCALE=de_DE.UTF-8

mt_log() { printf '==> %s\n' "$*" >&2; }

mt_install_deps() {
  local missing=()
  for pkg in "${MT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "moontask needs these Debian packages; install them with:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    mt_log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  mt_install_locale
}

# Compiles $MT_TEST_LOCALE into the system's locale archive if it is not
# there. Without root the test that needs it reports itself skipped.
mt_install_locale() {
  locale -a 2>/dev/null | grep -qix "${MT_TEST_LOCALE/UTF-8/utf8}" && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  mt_log "generating the $MT_TEST_LOCALE locale"
  localedef -i "${MT_TEST_LOCALE%%.*}" -f UTF-8 "$MT_TEST_LOCALE"
}

# mt_build DIR [cmake options...]
mt_build() {
  local dir=$1
  shift
  mt_log "building in $dir"
  cmake -S "$MT_ROOT" -B "$MT_ROOT/$dir" "$@" >/dev/null
  cmake --build "$MT_ROOT/$dir" -j"$(nproc)" >/dev/null
}

# Starts a private PostgreSQL server (moontask's embedded database, keyed by
# a fresh temporary folder) for tests and benchmarks, and arranges for it to
# be stopped by its PID and removed when the calling script exits. Sets
# DATABASE_URL. Uses the moontask binary in $1.
mt_private_db() {
  local bin=$1 status
  MT_DB_WORK=$(mktemp -d /tmp/moontask-db.XXXXXX)
  MT_DB_PID=""
  MT_DB_ROOT=""
  trap mt_private_db_cleanup EXIT
  trap 'exit 130' INT TERM
  mt_log "starting a private PostgreSQL server"
  DATABASE_URL=$(cd "$MT_DB_WORK" && "$bin" db start) || exit 1
  status=$(cd "$MT_DB_WORK" && "$bin" db status)
  MT_DB_PID=$(sed -n 's/^running (pid \([0-9]*\)) in \(.*\)$/\1/p' <<<"$status")
  MT_DB_ROOT=$(sed -n 's/^running (pid \([0-9]*\)) in \(.*\)$/\2/p' <<<"$status")
  export DATABASE_URL
}

# Runs from an EXIT trap, possibly under `set -e`: no command here may fail.
mt_private_db_cleanup() {
  if [ -n "${MT_DB_PID:-}" ] && kill -0 "$MT_DB_PID" 2>/dev/null; then
    kill -INT "$MT_DB_PID" 2>/dev/null || true # PostgreSQL's fast shutdown
    for _ in $(seq 100); do kill -0 "$MT_DB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MT_DB_PID" 2>/dev/null || true
  fi
  case "${MT_DB_ROOT:-}" in /var/tmp/moontask-*|/tmp/moontask-db.*) rm -rf "$MT_DB_ROOT" ;; esac
  rm -rf "${MT_DB_WORK:-/nonexistent}"
}
