#!/usr/bin/env bash
# Builds the lab's QEMU guest from Debian packages only: the Debian kernel
# (linux-image-amd64) and a small initramfs made of busybox-static, dropbear
# (SSH, key login) and OpenSSH's sftp-server, plus the virtio modules the
# kernel needs (Debian builds them as modules; docs/lab-facts.md lists them).
#
# Usage: scripts/build-guest.sh [--force]
#   Prints the guest directory on its last stdout line. The directory holds
#   vmlinuz, initramfs.cpio.gz, the SSH client key pair (id_ed25519), the
#   guest's host public key and guest.json (paths and the host key's SHA256
#   fingerprint). It is cached under /var/cache/blackout/guest/<key>, the key
#   being a hash of this script, the kernel version and the package versions:
#   a build happens only when that directory is missing (or with --force).
#
# The guest's network is configured by its /init from the kernel command line
# (bo.ip=ADDR/PREFIX, bo.host=NAME), so one image serves every lab.
set -euo pipefail

CACHE_ROOT=${BLACKOUT_GUEST_CACHE:-/var/cache/blackout/guest}
GUEST_USER=bolab
GUEST_UID=1000
force=0
[ "${1:-}" = "--force" ] && force=1

die() { echo "build-guest: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (the initramfs carries files owned by the guest user)"
for tool in busybox cpio gzip dropbearkey ssh-keygen sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool missing: run scripts/setup.sh (scripts/debian-packages.txt)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && file_is_static=$(ldd "$BUSYBOX" 2>&1 || true)
case "${file_is_static:-}" in *"not a dynamic"*) ;; *) die "$BUSYBOX is not the static busybox (package busybox-static)";; esac
DROPBEAR=/usr/sbin/dropbear
SFTP_SERVER=/usr/lib/openssh/sftp-server
[ -x "$DROPBEAR" ] || die "$DROPBEAR missing (package dropbear-bin)"
[ -x "$SFTP_SERVER" ] || die "$SFTP_SERVER missing (package openssh-sftp-server)"

# the newest installed kernel that has the virtio network modules
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net"
KVER=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
  if [ -n "$(find "/lib/modules/$k" -name 'virtio_net.ko*' 2>/dev/null | head -1)" ]; then KVER=$k; break; fi
done
[ -n "$KVER" ] || die "no kernel with virtio_net under /boot and /lib/modules (package linux-image-amd64)"

pkgver() { dpkg-query -W -f='${Package}=${Version} ' "$@" 2>/dev/null || true; }
KEY=$( { cat "$0"; echo "$KVER"; pkgver busybox-static dropbear-bin openssh-sftp-server; } | sha256sum | cut -c1-12)
OUT="$CACHE_ROOT/$KEY"

mkdir -p "$CACHE_ROOT"
# one builder at a time (parallel test labs may ask together)
exec 9>"$CACHE_ROOT/.lock"
flock -w 300 9 || die "timed out waiting for another build's lock"

if [ "$force" = 0 ] && [ -f "$OUT/guest.json" ]; then
  echo "$OUT"
  exit 0
fi

WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,www,lib/modules,root,var/log,usr/lib,lib64,lib/x86_64-linux-gnu}
chmod 1777 "$ROOT/tmp"

# busybox and its applets as symlinks (made here, so /init needs no --install)
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"
done

# dropbear and sftp-server with their shared libraries (ldd lists them)
copy_with_libs() {
  local bin=$1 dest=$2
  install -D -m 0755 "$bin" "$ROOT$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$ROOT$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$lib"
  done
}
copy_with_libs "$DROPBEAR" /sbin/dropbear
# dropbear execs /usr/lib/sftp-server for the sftp subsystem
copy_with_libs "$SFTP_SERVER" /usr/lib/sftp-server

# virtio modules, flat, loaded by /init in dependency order
for m in $MODULES; do
  f=$(find "/lib/modules/$KVER" -name "$m.ko*" | head -1)
  [ -n "$f" ] || die "module $m not found for kernel $KVER"
  case "$f" in
    *.ko) cp "$f" "$ROOT/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" > "$ROOT/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$ROOT/lib/modules/$m.ko" ;;
    *) die "unexpected module file $f" ;;
  esac
done

# users: root (no login) and the probe user (key login only; "*" = no password,
# not locked, see docs/lab-facts.md on "!")
cat > "$ROOT/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
$GUEST_USER:x:$GUEST_UID:$GUEST_UID:blackout probe user:/home/$GUEST_USER:/bin/sh
EOF
cat > "$ROOT/etc/group" <<EOF
root:x:0:
$GUEST_USER:x:$GUEST_UID:
EOF
cat > "$ROOT/etc/shadow" <<EOF
root:*:19000:0:99999:7:::
$GUEST_USER:*:19000:0:99999:7:::
EOF
chmod 0600 "$ROOT/etc/shadow"
echo /bin/sh > "$ROOT/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\n' > "$ROOT/etc/nsswitch.conf"

# keys: the guest's host key (dropbear format) and the client key pair
mkdir -p "$WORK/out" "$ROOT/etc/dropbear"
dropbearkey -t ed25519 -f "$ROOT/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
chmod 0600 "$ROOT/etc/dropbear/dropbear_ed25519_host_key"
dropbearkey -y -f "$ROOT/etc/dropbear/dropbear_ed25519_host_key" | grep '^ssh-ed25519 ' | awk '{print $1" "$2" blackout-guest-host"}' > "$WORK/out/ssh_host_ed25519_key.pub"
HOST_FP=$(ssh-keygen -l -E sha256 -f "$WORK/out/ssh_host_ed25519_key.pub" | awk '{print $2}')
case "$HOST_FP" in SHA256:*) ;; *) die "could not read the guest host key fingerprint";; esac
ssh-keygen -q -t ed25519 -N '' -C blackout-guest-client -f "$WORK/out/id_ed25519"
install -d -m 0755 -o "$GUEST_UID" -g "$GUEST_UID" "$ROOT/home/$GUEST_USER"
install -d -m 0700 -o "$GUEST_UID" -g "$GUEST_UID" "$ROOT/home/$GUEST_USER/.ssh"
install -m 0600 -o "$GUEST_UID" -g "$GUEST_UID" "$WORK/out/id_ed25519.pub" "$ROOT/home/$GUEST_USER/.ssh/authorized_keys"

echo '<html><body>blackout guest</body></html>' > "$ROOT/www/index.html"

# /init: PID 1. Mounts, modules, network from the command line, the services
# under respawn loops, then a ready line on the console that vm.ts waits for.
cat > "$ROOT/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  insmod /lib/modules/$m.ko || echo "blackout-guest: insmod $m failed"
done
ip=""; host=blackout-guest
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    bo.ip=*) ip=${arg#bo.ip=} ;;
    bo.host=*) host=${arg#bo.host=} ;;
  esac
done
hostname "$host"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || echo "blackout-guest: no eth0"
[ -n "$ip" ] && ip addr add "$ip" dev eth0
ip link set eth0 up
# the boot id, served over HTTP: it changes on every boot and survives a migration
cat /proc/sys/kernel/random/boot_id > /www/boot_id
respawn() { ( while true; do "$@"; sleep 1; done ) </dev/null >/dev/console 2>&1 & }
respawn nc -ll -p 7 -e cat
respawn httpd -f -p 80 -h /www
respawn dropbear -F -E -s -j -k -p 22 -r /etc/dropbear/dropbear_ed25519_host_key
echo "blackout-guest ready ip=$ip boot_id=$(cat /www/boot_id)"
while true; do sleep 3600; done
EOF
chmod 0755 "$ROOT/init"

cp "/boot/vmlinuz-$KVER" "$WORK/out/vmlinuz"
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -6 > "$WORK/out/initramfs.cpio.gz"

cat > "$WORK/out/guest.json" <<EOF
{
  "key": "$KEY",
  "kernelVersion": "$KVER",
  "kernel": "$OUT/vmlinuz",
  "initramfs": "$OUT/initramfs.cpio.gz",
  "user": "$GUEST_USER",
  "privateKeyFile": "$OUT/id_ed25519",
  "hostKey": "$HOST_FP",
  "hostKeyFile": "$OUT/ssh_host_ed25519_key.pub",
  "minMemoryMB": 96,
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
chmod 0600 "$WORK/out/id_ed25519"
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
echo "build-guest: built $OUT (kernel $KVER, initramfs $(du -h "$OUT/initramfs.cpio.gz" | cut -f1))" >&2
echo "$OUT"
