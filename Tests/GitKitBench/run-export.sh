#!/bin/sh
# GitKit's export against `git checkout` of the same commit into tmpfs, on real repositories, with hyperfine.
# Each command is a fresh process, so both pay their start-up. Usage:
#   Tests/GitKitBench/run-export.sh [REPO...]        (default: a few of /opt/swift-packages)
# Set OLD_BENCH to a second GitKit export binary (for example one built from an older commit) to compare it too.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bench="$root/$("$root/Tests/GitKitBench/build.sh" | tail -1)"
out=/dev/shm/gitkit-export-bench
[ "$#" -gt 0 ] || set -- /opt/swift-packages/swiftlang/swift-syntax.git /opt/swift-packages/apple/swift-crypto.git \
    /opt/swift-packages/apple/swift-protobuf.git /opt/swift-packages/apple/swift-nio.git
for repo in "$@"; do
    commit=$(git -C "$repo" rev-parse HEAD)
    echo "== $repo $commit"
    set -- -n gitkit "$bench export-once $repo $commit $out/t"
    if [ -n "${OLD_BENCH:-}" ]; then set -- "$@" -n gitkit-old "$OLD_BENCH $repo $commit $out/t"; fi
    hyperfine -N --warmup 2 --runs "${RUNS:-15}" --prepare "sh -c 'rm -rf $out; mkdir -p $out/t'" "$@" \
        -n git "env GIT_INDEX_FILE=$out/index git -C $repo --work-tree=$out/t checkout -q -f $commit -- ."
done
rm -rf "$out"
