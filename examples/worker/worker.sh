#!/bin/sh
# The worker: takes job files from $SLIPWAY_SHARED_DIR/queue, one at a time, and writes a result for each to done/.
# It beats once a second (heartbeat.<release> holds its pid), and on SIGTERM it finishes the job in hand, then
# stops. Slipway runs it (`processes:` in pipelines/worker.yml); nothing here downloads anything.
set -u
shared=$SLIPWAY_SHARED_DIR
release=${SLIPWAY_RELEASE_DIR##*/}
mkdir -p "$shared/queue" "$shared/done"
stopping=
trap 'stopping=1' TERM INT
echo "worker $$ of release $release started"
while [ -z "$stopping" ]; do
    echo $$ > "$shared/heartbeat.$release"
    for job in "$shared"/queue/*.job; do
        [ -e "$job" ] || break
        name=${job##*/}
        # The work itself: count the job's words. A real worker would send mail or resize images here.
        echo "release $release: $(wc -w < "$job") words" > "$shared/done/${name%.job}.done"
        rm -f "$job"
        echo "did $name"
        [ -z "$stopping" ] || break
    done
    # A TERM interrupts the wait at once (a trap runs only between commands, and sleep would hold it up).
    sleep 1 &
    wait $! || true
done
rm -f "$shared/heartbeat.$release"
echo "worker $$ of release $release stopped"
