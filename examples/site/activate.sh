#!/bin/sh
# The activate step: records which release is live, for the health check to read back. A release's id is the name
# of its folder (the id of the deployment that built it); in a rollback, SLIPWAY_DEPLOYMENT is the rollback's own id.
set -eu
release=${SLIPWAY_RELEASE_DIR##*/}
echo "$release" > "$SLIPWAY_SHARED_DIR/live"
echo "release $release is live at $SLIPWAY_DEPLOY_TO/current"
