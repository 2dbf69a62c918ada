#!/bin/sh
# Installed as /usr/local/bin/cairn by install.sh: runs a `cairn` command with the services'
# settings (/etc/cairn/cairn.env) and as their user, e.g. `sudo cairn setup-link`.
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "Run it as root: sudo cairn $*" >&2
  exit 1
fi
set -a
CAIRN_DATA_DIR=/var/lib/cairn
if [ -r /etc/cairn/cairn.env ]; then
  . /etc/cairn/cairn.env
fi
set +a
cd /opt/cairn
exec runuser -u cairn -- /opt/cairn/.venv/bin/cairn "$@"
