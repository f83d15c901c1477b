# Shared by scripts/run, scripts/test and scripts/bench: installing what is
# missing and building. Sourced, not run.

MT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages moontask needs to build, run and test.
# clang-format checks the committed .clang-format in scripts/test; locales
# provides the locale below; the AWS tests' fake servers are python3
# scripts, and one serves TLS with a certificate made by openssl. clang and
# its runtime (libFuzzer) build the fuzzers (scripts/fuzz); valgrind checks
# for leaks; the fault suite's TCP proxy plugs a private network
# namespace's loopback with iproute2's tc. node-llhttp carries the C
# sources of the HTTP endpoint's request parser (CMakeLists.txt says why);
# chromium runs the status page's browser test, and curl fetches pages in
# the endpoint's tests. The package test (tests/e2e/test_package.sh)
# needs dpkg-dev's dpkg-shlibdeps and `file` (cpack -G DEB finds the .deb's
# dependencies with them), groff-base to render the man page and systemd's
# systemd-analyze to verify the unit (it needs no running systemd).
MT_PACKAGES=(cmake gcc make pkg-config liblua5.4-dev lua5.4 libpq-dev
             libuv1-dev libpcre2-dev libcurl4-openssl-dev libssl-dev
             lua-busted postgresql postgresql-client clang-format locales
             python3 openssl clang libclang-rt-14-dev valgrind iproute2
             node-llhttp chromium curl dpkg-dev file groff-base systemd)

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

# What the calling script must undo when it exits, however it exits: the
# private servers below register their cleanup here, and one EXIT trap runs
# them all, the last registered first. (A script that sets an EXIT trap of
# its own calls mt_cleanup from it.)
MT_CLEANUPS=()
mt_on_exit() {
  MT_CLEANUPS+=("$1")
  trap mt_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Runs from the EXIT trap: every cleanup, each tolerating failure, once.
mt_cleanup() {
  local i
  for ((i = ${#MT_CLEANUPS[@]} - 1; i >= 0; i--)); do
    "${MT_CLEANUPS[i]}" || true
  done
  MT_CLEANUPS=()
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
  mt_on_exit mt_private_db_cleanup
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

# The moto release the AWS tests are written against, and how to install it
# where moto_server is missing.
MT_MOTO_VERSION=5.2.1
MT_MOTO_INSTALL="pip install 'moto[server]==$MT_MOTO_VERSION'"

# Starts a private moto_server (moto's mock of SQS, EventBridge Scheduler
# and STS) on 127.0.0.1 and a free port for the AWS tests, waits until it
# answers, and arranges for it to be stopped by its PID when the calling
# script exits. Exports MT_TEST_AWS_ENDPOINT and, in place of every AWS_*
# variable of the caller's environment, dummy credentials and region
# us-east-1, so that no test can pick up a real profile or key; the
# calling script's children see them, the user's shell never does.
# Returns 1, having said how to install it, when moto_server is missing;
# exits 1 when it is there but does not start.
mt_private_moto() {
  local port try name
  if ! command -v moto_server >/dev/null; then
    echo "moto_server (moto's AWS mock) is not installed; the AWS tests run against it." >&2
    echo "Install it with:" >&2
    echo "  $MT_MOTO_INSTALL" >&2
    return 1
  fi
  MT_MOTO_WORK=$(mktemp -d /tmp/moontask-moto.XXXXXX)
  MT_MOTO_PID=""
  mt_on_exit mt_private_moto_cleanup
  # moto itself reads them too (a profile that does not exist here makes
  # it answer 500), so before it starts.
  for name in $(compgen -e AWS_); do unset "$name"; done
  export AWS_ACCESS_KEY_ID=moontask-test AWS_SECRET_ACCESS_KEY=moontask-test
  export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
  # No shared files, no instance metadata: nothing of this machine's AWS
  # setup reaches a test.
  export AWS_CONFIG_FILE=$MT_MOTO_WORK/no-config AWS_SHARED_CREDENTIALS_FILE=$MT_MOTO_WORK/no-credentials
  export AWS_EC2_METADATA_DISABLED=true
  mt_log "starting a private moto_server"
  # The port is free when we look; should another process take it before
  # moto binds it, moto exits and the next try picks another.
  for try in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || exit 1
    moto_server -H 127.0.0.1 -p "$port" >"$MT_MOTO_WORK/moto.log" 2>&1 </dev/null &
    MT_MOTO_PID=$!
    mt_moto_wait "$port" 30 && break
    kill -KILL "$MT_MOTO_PID" 2>/dev/null
    wait "$MT_MOTO_PID" 2>/dev/null
    MT_MOTO_PID=""
    if [ "$try" -eq 3 ]; then
      echo "moto_server did not answer on 127.0.0.1 (3 tries, up to 30 s each); its output:" >&2
      tail -n 20 "$MT_MOTO_WORK/moto.log" >&2
      exit 1
    fi
  done
  export MT_TEST_AWS_ENDPOINT=http://127.0.0.1:$port
}

# mt_moto_wait PORT SECONDS: whether moto_server, started as $MT_MOTO_PID,
# answers an HTTP request on PORT within SECONDS (it takes a second or two
# to import); no if it exits first.
mt_moto_wait() {
  local port=$1 deadline=$((SECONDS + $2)) line
  while [ $SECONDS -lt "$deadline" ]; do
    mt_moto_running || return 1
    line=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      read -r -t 5 line <&3 && echo "$line") 2>/dev/null)
    [[ $line == HTTP/1.?" "[0-9]* ]] && return 0
    sleep 0.1
  done
  return 1
}

# Whether moto_server is still running: our child, so a dead one lingers
# as a zombie that kill -0 would still find.
mt_moto_running() {
  local stat
  stat=$(ps -o stat= -p "$MT_MOTO_PID" 2>/dev/null) && [[ $stat != *Z* ]]
}

# Runs from the EXIT trap: no command here may fail.
mt_private_moto_cleanup() {
  if [ -n "${MT_MOTO_PID:-}" ]; then
    kill -TERM "$MT_MOTO_PID" 2>/dev/null || true
    for _ in $(seq 50); do mt_moto_running || break; sleep 0.1; done
    kill -KILL "$MT_MOTO_PID" 2>/dev/null || true
    wait "$MT_MOTO_PID" 2>/dev/null || true
  fi
  MT_MOTO_PID=""
  rm -rf "${MT_MOTO_WORK:-/nonexistent}"
}
