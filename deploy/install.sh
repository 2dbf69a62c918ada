#!/bin/sh
# Install Cairn on a Debian 12 box as two systemd services (cairn-web, cairn-worker).
# Run as root from a checkout:  sudo deploy/install.sh
# Running it again updates the code and dependencies and restarts the services; the data in
# /var/lib/cairn and the settings in /etc/cairn/cairn.env are kept.
set -eu

PREFIX=/opt/cairn
DATA=/var/lib/cairn
src=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "Run this as root: sudo $0" >&2
  exit 1
fi

"$src/deploy/debian-packages.sh" run

if ! id cairn >/dev/null 2>&1; then
  useradd --system --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin \
          --comment "Cairn backups" cairn
fi

# Code and venv belong to root: the services can read but not change what they run.
if [ "$src" != "$PREFIX" ]; then
  install -d -m 0755 "$PREFIX"
  rsync -a --delete --exclude /.venv --exclude /var --exclude /.git "$src/" "$PREFIX/"
fi
[ -x "$PREFIX/.venv/bin/python" ] || python3 -m venv "$PREFIX/.venv"
"$PREFIX/.venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/.venv/bin/pip" install --quiet -c "$PREFIX/constraints.txt" -e "$PREFIX"
"$PREFIX/.venv/bin/python" -m compileall -q "$PREFIX/app.py" "$PREFIX/config.py" "$PREFIX/cli.py" \
  "$PREFIX/models" "$PREFIX/views" "$PREFIX/jobs"
chown -R root:root "$PREFIX"

install -d -m 0700 -o cairn -g cairn "$DATA"
install -d -m 0755 /etc/cairn
if [ ! -f /etc/cairn/cairn.env ]; then
  install -m 0640 -g cairn "$PREFIX/deploy/cairn.env.example" /etc/cairn/cairn.env
fi

install -m 0755 "$PREFIX/deploy/cairn-admin.sh" /usr/local/bin/cairn
install -m 0644 "$PREFIX/deploy/cairn-web.service" "$PREFIX/deploy/cairn-worker.service" \
  /etc/systemd/system/
systemctl daemon-reload
systemctl enable cairn-web.service cairn-worker.service
systemctl restart cairn-web.service cairn-worker.service

# The setup link, made with the services' own settings and as their user.
link=$(/usr/local/bin/cairn setup-link 2>/dev/null) || link=""

echo
echo "Cairn is installed and running (systemctl status cairn-web cairn-worker)."
if [ -n "$link" ]; then
  echo "Create the first admin account with this one-time link (valid for 1 hour):"
  echo "$link"
else
  echo "Log in with an admin account. A new setup link, if nobody can log in yet:"
  echo "  sudo cairn setup-link"
fi
