#!/bin/sh
# Makes a repository with a long history from a real one, for export benchmarks: COMMITS commits on top of
# SOURCE's head, each editing FILES of its Swift files, then repacked as `git gc --aggressive` would, so that the
# head's blobs are deep in delta chains as in a project with years of history.
# Usage: Tests/GitKitBench/make-history.sh SOURCE_BARE_REPO OUT_BARE_REPO [COMMITS] [FILES]
set -eu
source=$1
out=$2
commits=${3:-400}
files=${4:-25}
work=$(mktemp -d /tmp/gitkit-history-XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$source" "$work/w"
cd "$work/w"
git ls-files '*.swift' > "$work/files"
count=$(wc -l < "$work/files")
i=0
while [ "$i" -lt "$commits" ]; do
    # A deterministic pseudo-random choice of files and lines, so every run makes the same history.
    awk -v seed="$i" -v n="$count" -v k="$files" 'BEGIN { srand(seed); for (j = 0; j < k; j++) print int(rand() * n) + 1 }' \
        | while read -r line; do
            file=$(sed -n "${line}p" "$work/files")
            awk -v seed="$i$line" 'BEGIN { srand(seed) } { print } NR % 40 == int(rand() * 40) { print "// revision " seed }' \
                "$file" > "$work/edit" && cat "$work/edit" > "$file"
        done
    git -c user.name=bench -c user.email=bench@example.com commit -qam "revision $i" --date="@$((1600000000 + i * 86400)) +0000"
    i=$((i + 1))
done
rm -rf "$out"
git clone -q --bare "$work/w" "$out"
git -C "$out" repack -a -d -f -q --depth=50 --window=250
git -C "$out" count-objects -v | grep -E 'in-pack|size-pack'
