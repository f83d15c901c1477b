# Packaging: `cmake --install` and `cpack -G DEB` from the build folder of
# $MOONTASK_BIN install the binary, the test kit, the man page and the
# systemd unit; the .deb has the project's version and the libraries'
# packages as dependencies, and its binary runs once extracted. Everything
# is written under $E2E_TMP: the package is made with `cpack -B`, and the
# install goes to a prefix there. (CPack brings the build up to date first,
# as `make package` would, and both leave install_manifest.txt and the
# configured unit in the build folder.) No database is needed.
DATABASE_URL=${DATABASE_URL:-unused-by-test_package}
source "$(dirname "$0")/lib.sh"

for tool in cpack dpkg-deb dpkg-shlibdeps lua5.4; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/lib.sh's MT_PACKAGES has it)"
done
build=$(cd "$(dirname "$MOONTASK_BIN")" && pwd)
[ -f "$build/CPackConfig.cmake" ] || fail "$build has no CPackConfig.cmake: MOONTASK_BIN is not in a CMake build folder"

# The version the binary reports, which the package must carry too.
version_line=$("$MOONTASK_BIN" --version)
[[ $version_line =~ ^moontask\ ([0-9]+\.[0-9]+\.[0-9]+)$ ]] || fail "--version printed '$version_line'"
version=${BASH_REMATCH[1]}
assert_contains "$("$MOONTASK_BIN" --help)" "--version" "--help"
assert_eq "$version_line" "$("$MOONTASK_BIN" list --version)" "--version after a command"

# cmake --install into a prefix of our own: the unit names the binary
# where this prefix put it.
prefix=$E2E_TMP/prefix
cmake --install "$build" --prefix "$prefix" >"$E2E_TMP/install.log"
for f in bin/moontask share/man/man1/moontask.1.gz lib/systemd/system/moontask.service \
         share/moontask/testkit/moontask/testkit.lua share/moontask/testkit/moontask/fake_http.py; do
  [ -f "$prefix/$f" ] || fail "cmake --install did not install $f (installed: $(find "$prefix" -type f))"
done
grep -qx "ExecStart=$prefix/bin/moontask run --config /etc/moontask/config.lua" \
  "$prefix/lib/systemd/system/moontask.service" || fail "unit's ExecStart: $(grep ExecStart "$prefix/lib/systemd/system/moontask.service")"
assert_eq "$version_line" "$("$prefix/bin/moontask" --version)" "installed binary's --version"
# The test kit loads from there as README says: LUA_PATH names its folder.
kit=$(LUA_PATH="$prefix/share/moontask/testkit/?.lua;;" MOONTASK_CONFIG=/dev/null \
  lua5.4 -e 'local kit = require("moontask.testkit")
             print(type(kit.run) .. " " .. type(kit.validate) .. " " .. type(kit.fake_http))')
assert_eq "function function function" "$kit" "installed test kit"

# The .deb.
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$E2E_TMP/deb" >"$E2E_TMP/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 20 "$E2E_TMP/cpack.log")"
debs=("$E2E_TMP"/deb/moontask_*.deb)
[ -f "${debs[0]}" ] || fail "cpack made no moontask_*.deb: $(ls "$E2E_TMP/deb")"
deb=${debs[0]}
arch=$(dpkg --print-architecture)
assert_eq "moontask_${version}_$arch.deb" "${deb##*/}" "package file name"

contents=$(dpkg-deb -c "$deb")
for f in usr/bin/moontask usr/lib/systemd/system/moontask.service usr/share/man/man1/moontask.1.gz \
         usr/share/moontask/testkit/moontask/testkit.lua; do
  grep -Eq " \./$f\$" <<<"$contents" || fail "the .deb does not hold $f; it holds: $contents"
done
grep -Eq '^-rwxr-xr-x root/root .* \./usr/bin/moontask$' <<<"$contents" ||
  fail "usr/bin/moontask is not root's 0755: $(grep usr/bin/moontask <<<"$contents")"
# Nothing outside /usr: a package installs under /usr, as Debian's do.
! grep -Ev ' \./(usr/.*)?$' <<<"$contents" || fail "the .deb installs outside /usr"

dpkg-deb -I "$deb" >"$E2E_TMP/info" || fail "dpkg-deb -I failed"
assert_eq moontask "$(dpkg-deb -f "$deb" Package)" "Package"
assert_eq "$version" "$(dpkg-deb -f "$deb" Version)" "Version"
assert_eq "$arch" "$(dpkg-deb -f "$deb" Architecture)" "Architecture"
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
# dpkg-shlibdeps named the packages of the libraries the binary links.
depends=$(dpkg-deb -f "$deb" Depends)
for pkg in libc6 liblua5.4-0 libpq5 libuv1 libpcre2-8-0 libcurl4 libssl3; do
  [[ ", $depends," == *", $pkg"[\ ,]* ]] || fail "Depends lacks $pkg: $depends"
done

# Installed in a throw-away root: the binary runs, and the unit starts it
# from there and reloads it with SIGHUP.
root=$E2E_TMP/root
dpkg-deb -x "$deb" "$root"
assert_eq "$version_line" "$("$root/usr/bin/moontask" --version)" "the package's binary"
unit=$root/usr/lib/systemd/system/moontask.service
grep -qx "ExecStart=/usr/bin/moontask run --config /etc/moontask/config.lua" "$unit" ||
  fail "the package's unit: $(grep ExecStart "$unit")"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" || fail "the unit does not reload with SIGHUP"
# The packaged binary starts and runs a task against the test database, as
# the unit would (systemd itself does not run here).
mkdir -p "$E2E_TMP/svc/tasks/pkg"
echo 'return { handler = function(tx, payload, ctx) end }' >"$E2E_TMP/svc/tasks/pkg/noop.lua"
pkgmt() { (cd "$E2E_TMP/svc" && "$root/usr/bin/moontask" --database-url "$DATABASE_URL" "$@"); }
pkgmt migrate >/dev/null
pkg_id=$(pkgmt schedule pkg.noop '{}')
pkgmt run --drain 2>"$E2E_TMP/svc/run.log" || fail "the package's binary did not run: $(tail -n 3 "$E2E_TMP/svc/run.log")"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE id = $pkg_id")" "a task run by the package's binary"
# systemd checks the unit, with no running systemd: a copy whose
# ExecStart is the throw-away root's binary, with the package's man page
# for Documentation=man:moontask(1).
if command -v systemd-analyze >/dev/null; then
  mkdir "$E2E_TMP/unit"
  sed "s|^ExecStart=/usr/bin/moontask |ExecStart=$root/usr/bin/moontask |" "$unit" >"$E2E_TMP/unit/moontask.service"
  MANPATH=$root/usr/share/man systemd-analyze verify "$E2E_TMP/unit/moontask.service" \
    >"$E2E_TMP/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$E2E_TMP/verify.log")"
  [ ! -s "$E2E_TMP/verify.log" ] || fail "systemd-analyze verify warned: $(cat "$E2E_TMP/verify.log")"
else
  echo "note: systemd-analyze is not installed; the unit was not verified" >&2
fi

# The man page renders without a warning, where a formatter is installed.
page=$root/usr/share/man/man1/moontask.1.gz
if command -v groff >/dev/null; then
  warnings=$(zcat "$page" | groff -man -Tutf8 -ww -z 2>&1)
  assert_eq "" "$warnings" "groff's warnings on moontask.1"
  text=$(zcat "$page" | groff -man -Tascii -P-cbou 2>/dev/null)
  for section in SYNOPSIS COMMANDS "GLOBAL OPTIONS" CONFIGURATION SIGNALS "EXIT STATUS" ENVIRONMENT FILES; do
    grep -q "^$section" <<<"$text" || fail "moontask(1) has no $section section"
  done
elif command -v mandoc >/dev/null; then
  mandoc -T lint -W warning "$page" || fail "mandoc -T lint found problems in moontask.1"
else
  echo "note: neither groff nor mandoc is installed; moontask(1) was not rendered" >&2
fi
