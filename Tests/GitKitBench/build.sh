#!/bin/sh
# Builds the GitKit target alone in release mode, then this directory's main.swift against it, into
# .build/gitkit-bench. Only GitKit is compiled, not the whole package.
set -eu
cd "$(dirname "$0")/../.."
swift build -c release --target GitKit >/dev/null
swiftc -O -o .build/gitkit-bench Tests/GitKitBench/main.swift \
    -I .build/release/Modules -Xcc -fmodule-map-file=Sources/CLibGit2/module.modulemap -I Sources/CLibGit2 \
    .build/release/GitKit.build/*.o -lgit2
echo .build/gitkit-bench
