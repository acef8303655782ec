#!/bin/sh
# The build step: stamps the page with the commit it was built from.
set -eu
printf '<p>Built from %s for %s.</p>\n' "$SLIPWAY_COMMIT" "$GREETING" >> public/index.html
echo "built public/index.html from $SLIPWAY_COMMIT"
