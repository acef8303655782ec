#!/bin/sh
# GitKit's ssh:// fetch of one new commit against `git fetch` over the same sshd on loopback, with hyperfine.
# Usage: Tests/GitKitBench/run-ssh-fetch.sh [SOURCE_BARE_REPO] [RUNS]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
source=${1:-/opt/swift-packages/apple/swift-nio.git}
runs=${2:-20}
bench=$("$root/Tests/GitKitBench/build.sh" | tail -1)
bench="$root/$bench"
dir=$(mktemp -d /tmp/gitkit-ssh-bench-XXXXXX)
trap 'kill $(cat "$dir/sshd.pid") 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$dir/host"
ssh-keygen -q -t ed25519 -N '' -f "$dir/user"
cp "$dir/user.pub" "$dir/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
PidFile $dir/sshd.pid
CONF
/usr/sbin/sshd -f "$dir/sshd_config"
sleep 0.5
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host.pub")" > "$dir/known_hosts"
user=$(id -un)
git clone -q --bare "$source" "$dir/origin.git"
git clone -q "$dir/origin.git" "$dir/work"
url="ssh://$user@127.0.0.1:$port$dir/origin.git"
export BENCH_SSH_KEY="$dir/user" BENCH_KNOWN_HOSTS="$dir/known_hosts" BENCH_SSH_CONFIG=/dev/null
export GIT_SSH_COMMAND="ssh -F /dev/null -i $dir/user -o IdentitiesOnly=yes -o UserKnownHostsFile=$dir/known_hosts -o BatchMode=yes -o StrictHostKeyChecking=yes"
"$bench" mirror "$url" "$dir/gitkit.git"
git clone -q --mirror "$url" "$dir/git.git"
push='cd '"$dir"'/work && date +%s%N >> bench.txt && git add bench.txt && git -c user.name=b -c user.email=b@b commit -qm bench && git push -q origin HEAD'
hyperfine -N --warmup 2 --runs "$runs" --prepare "sh -c '$push'" \
    -n gitkit "$bench fetch $dir/gitkit.git" \
    -n git "git -C $dir/git.git fetch -q"
