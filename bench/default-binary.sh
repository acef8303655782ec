# Sourced by bench/faults/run, bench/load/run and bench/fuzz/run. Without --slipway or $SLIPWAY_BIN they use
# this checkout's debug binary, built first (a no-op when it is up to date).
case " $* " in
*" --slipway "* | *" --slipway="*) ;;
*)
    if [ -z "${SLIPWAY_BIN:-}" ]; then
        root=$(cd "$(dirname "$0")/../.." && pwd)
        [ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
        (cd "$root" && swift build --product slipway >&2)
        SLIPWAY_BIN="$root/.build/debug/slipway"
        export SLIPWAY_BIN
    fi
    ;;
esac
