#!/bin/sh
# Install the Debian packages Cairn needs for PURPOSE (run | test), or, when not root, print
# the exact command that would and stop. Called by `make run` and `make test`.
set -eu

purpose=${1:?usage: debian-packages.sh run|test|bench}
# python3-venv: `python3 -m venv` needs ensurepip, which Debian ships separately. udev: the
# worker's drive watcher reads block devices through libudev; util-linux: mount and umount;
# openssh-client: ssh, ssh-keygen and ssh-keyscan for other machines.
run_packages="rsync python3 python3-venv ca-certificates udev util-linux openssh-client"
case "$purpose" in
  run)  wanted="$run_packages" ;;
  # e2fsprogs: mkfs.ext4 for the loop-device "USB drives" of the tests; openssh-server: the
  # tests' own sshd on a loopback port; xfsprogs: an XFS loop image, whose reflinks the
  # media import's tests use.
  test) wanted="$run_packages chromium systemd e2fsprogs exfat-fuse exfatprogs openssh-server xfsprogs" ;;
  # The benchmarks time Cairn against Debian's rsnapshot on the same data, its duplicate
  # scan against jdupes and rmlint, and load the pages with wrk.
  bench) wanted="$run_packages chromium systemd e2fsprogs exfat-fuse exfatprogs openssh-server xfsprogs rsnapshot jdupes rmlint wrk" ;;
  *)    echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=""
for package in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $package" ;;
  esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Cairn needs these Debian packages:$missing" >&2
  echo "Install them, then run make again:" >&2
  echo "  sudo apt-get install -y --no-install-recommends$missing" >&2
  exit 1
fi

echo "Installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# Fresh machines have no package lists; update once, only when something is missing.
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
