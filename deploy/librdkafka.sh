#!/usr/bin/env bash
# Builds the librdkafka every program links: Debian trixie's source package
# librdkafka 2.8.0-1, compiled here against bookworm's libraries into a
# project-local prefix (static library, headers including rdkafka_mock.h, and
# a pkg-config file), and prints that prefix's pkg-config directory on stdout.
#
#   librdkafka.sh            build once if needed, print PKGCONFIG_DIR
#   librdkafka.sh --check    print PKGCONFIG_DIR if built, else fail (no build)
#   librdkafka.sh --dir      print PKGCONFIG_DIR, built or not (the Makefile's
#                            PKG_CONFIG_PATH; it checks for rdkafka.pc itself)
#
# Why not bookworm's librdkafka-dev (2.0.2): Kafka 4 enforces RFC 5802 and
# refuses the SCRAM client-final-message of librdkafka < 2.6.1, which carries
# the client nonce twice (librdkafka#4895), so SCRAM-SHA-256/512 logins fail.
# Why not trixie's binary packages: they need trixie's glibc. The source
# package is fetched through a private apt configuration (its own sources
# list with a deb-src line for trixie, its own lists and cache directories
# under the cache), so the system's apt sources stay bookworm-only; apt checks
# the files against trixie's signed Sources index. The build dependencies
# (libssl-dev, zlib1g-dev, libzstd-dev, liblz4-dev, libsasl2-dev,
# libcurl4-openssl-dev) come from bookworm through deploy/install-deps.sh.
#
# The library is built with its own ./configure (mklove), every feature the
# Debian package has required (a missing -dev package fails the build instead
# of dropping SSL or SASL silently). Only the C library's static archive is
# built and installed (no shared object that would need an rpath and could be
# confused with the system's librdkafka1 at run time; no C++ binding, examples
# or tests); the pkg-config file names the archive and its dependencies in
# Libs, since the Makefile asks for --libs, not --static.
#
# Cached in $LIBRDKAFKA_CACHE (default ~/.cache/decision-store/librdkafka-2.8.0)
# under a lock: a second run, or a concurrent one, prints the prefix and builds
# nothing. The build takes minutes on two busy cores (log: CACHE/build.log).
set -euo pipefail

VERSION=2.8.0
DEBVERSION=2.8.0-1
# sha256 of the upstream tarball in trixie's Sources (apt verifies it too;
# checked again here so a changed archive is refused, not built)
ORIG_SHA256=5bd1c46f63265f31c6bfcedcde78703f77d28238eadf23821c2b43fc30be3e25
# Once a trixie point release replaces 2.8.0-1, the archive's trixie no
# longer lists it: LIBRDKAFKA_MIRROR=http://snapshot.debian.org/archive/debian/20250815T000000Z
# (a date when it was current) still has it.
MIRROR=${LIBRDKAFKA_MIRROR:-http://deb.debian.org/debian}

CACHE=$(realpath -m "${LIBRDKAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decision-store/librdkafka-$VERSION}")
PREFIX=$CACHE/prefix
PCDIR=$PREFIX/lib/pkgconfig
STAMP=$CACHE/complete

die() { echo "librdkafka: $*" >&2; exit 1; }

built() { [ -e "$STAMP" ] && [ -e "$PCDIR/rdkafka.pc" ] && [ -e "$PREFIX/lib/librdkafka.a" ]; }

if [ "${1:-}" = --dir ]; then echo "$PCDIR"; exit 0; fi
if [ "${1:-}" = --check ]; then
  built || die "librdkafka $VERSION is not built in $CACHE (run deploy/librdkafka.sh)"
  echo "$PCDIR"; exit 0
fi
[ $# -eq 0 ] || die "usage: librdkafka.sh [--check|--dir]"

if built; then echo "$PCDIR"; exit 0; fi

mkdir -p "$CACHE"
exec 9>"$CACHE.lock"
flock 9
if built; then echo "$PCDIR"; exit 0; fi

start=$(date +%s)
echo "librdkafka: building Debian's librdkafka $DEBVERSION (source package from trixie) into $PREFIX; the first time takes minutes" >&2
rm -rf "$CACHE/apt" "$CACHE/src" "$PREFIX" "$STAMP"

# Private apt: only this sources list (sourceparts points at an empty dir),
# its own lists, cache and state, no binary package caches written.
apt=$CACHE/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/state" "$CACHE/src"
# snapshot.debian.org serves old Release files, which apt may call expired
opts="signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
case $MIRROR in *snapshot.debian.org*) opts="$opts check-valid-until=no" ;; esac
echo "deb-src [$opts] $MIRROR trixie main" >"$apt/sources.list"
APTOPTS=(
  -o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=$apt/parts"
  -o "Dir::State::Lists=$apt/lists" -o "Dir::State::extended_states=$apt/state/extended_states"
  -o "Dir::Cache=$apt/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=$(id -un)" -o "Debug::NoLocking=1"
)
log=$CACHE/build.log
: >"$log"
apt-get "${APTOPTS[@]}" -q update >>"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; die "apt-get update for trixie's sources failed (log: $log)"; }
(cd "$CACHE/src" && apt-get "${APTOPTS[@]}" -q source --download-only "librdkafka=$DEBVERSION") >>"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; die "apt-get source librdkafka=$DEBVERSION failed (log: $log)"; }
echo "$ORIG_SHA256  $CACHE/src/librdkafka_$VERSION.orig.tar.gz" | sha256sum -c --quiet - >&2 ||
  die "librdkafka_$VERSION.orig.tar.gz does not match the pinned sha256"
# The .dsc's maintainer signature cannot be checked without debian-keyring;
# its files were checked against the signed Sources index by apt.
dpkg-source --no-check -x "$CACHE/src/librdkafka_$DEBVERSION.dsc" "$CACHE/src/librdkafka-$VERSION" >>"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; die "dpkg-source -x failed (log: $log)"; }

src=$CACHE/src/librdkafka-$VERSION
jobs=$(nproc 2>/dev/null || echo 2)
(
  cd "$src"
  ./configure --prefix="$PREFIX" --no-download \
    --enable-ssl --enable-gssapi --enable-zlib --enable-zstd --enable-lz4-ext --enable-curl
  make -C src -j"$jobs" librdkafka.a
  mkdir -p "$PREFIX/include/librdkafka" "$PCDIR"
  install -m 644 src/rdkafka.h src/rdkafka_mock.h "$PREFIX/include/librdkafka/"
  install -m 644 src/librdkafka.a "$PREFIX/lib/"
) >>"$log" 2>&1 || { tail -n 30 "$log" >&2; die "building librdkafka $VERSION failed (log: $log)"; }

# pkg-config: the archive's dependencies, as configure found them (mklove's
# Makefile.config), go in Requires and Libs. The headers are a system
# directory (-isystem), as /usr/include is for the system's librdkafka: our
# -Werror build is not the place to fail on the library's own header (2.8.0
# declares `const int rd_kafka_TopicPartitionInfo_partition()`, which
# -Wextra's -Wignored-qualifiers flags).
libs=$(sed -n 's/^MKL_PKGCONFIG_LIBS_PRIVATE=[[:space:]]*//p' "$src/Makefile.config")
requires=$(sed -n 's/^MKL_PKGCONFIG_REQUIRES_PRIVATE=[[:space:]]*//p' "$src/Makefile.config")
cat >"$PCDIR/rdkafka.pc" <<EOF
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: librdkafka
Description: The Apache Kafka C/C++ library (Debian $DEBVERSION source, built static by deploy/librdkafka.sh)
Version: $VERSION
Requires: $requires
Cflags: -isystem \${includedir}
Libs: \${libdir}/librdkafka.a $libs
EOF
pkg-config --exists --print-errors "$PCDIR/rdkafka.pc" >&2 || die "the generated rdkafka.pc does not resolve (its Requires: $requires)"
# The downloaded source package stays (CACHE/src/*.dsc, *.tar.*); the apt
# lists and the build tree (about 110 MB) are of no further use.
rm -rf "$apt" "$src"
touch "$STAMP"
echo "librdkafka: $VERSION built in $(( $(date +%s) - start )) s" >&2
echo "$PCDIR"
