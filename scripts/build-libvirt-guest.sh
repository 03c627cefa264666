#!/usr/bin/env bash
# The smallest guest the libvirt adapter's tests need: the Debian kernel and a
# busybox initramfs (package busybox-static) with the virtio network modules.
# The guest takes its address from the kernel command line (bo.ip=ADDR/PREFIX)
# and serves
#   port 7  a TCP echo (busybox nc -e cat)
#   port 8  its own clock: one line, its uptime in seconds, per connection. The
#           guest's clock stands still while the guest is paused or saved, so
#           the difference to the host's clock across a blackout is the
#           guest's own pause.
# Usage: scripts/build-libvirt-guest.sh   → prints the cache folder (vmlinuz, initramfs.cpio.gz)
set -euo pipefail
CACHE_ROOT=${BLACKOUT_GUEST_CACHE:-/var/cache/blackout/libvirt-guest}
die() { echo "build-libvirt-guest: $*" >&2; exit 1; }
for tool in cpio gzip sha256sum flock; do command -v "$tool" >/dev/null || die "$tool missing"; done
BUSYBOX=/bin/busybox
case "$(ldd "$BUSYBOX" 2>&1 || true)" in *"not a dynamic"*) ;; *) die "$BUSYBOX is not static (package busybox-static)";; esac
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net"
KVER=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
  if [ -n "$(find "/lib/modules/$k" -name 'virtio_net.ko*' 2>/dev/null | head -1)" ]; then KVER=$k; break; fi
done
[ -n "$KVER" ] || die "no kernel with virtio_net in /boot and /lib/modules (package linux-image-amd64)"
KEY=$( { cat "$0"; echo "$KVER"; dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true; } | sha256sum | cut -c1-12)
OUT="$CACHE_ROOT/$KEY"
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock -w 120 9 || die "timed out waiting for another build"
if [ -f "$OUT/initramfs.cpio.gz" ]; then echo "$OUT"; exit 0; fi
WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R"/{bin,proc,sys,dev,tmp,lib/modules} "$WORK/out"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
for m in $MODULES; do
  f=$(find "/lib/modules/$KVER" -name "$m.ko*" | head -1)
  [ -n "$f" ] || die "module $m missing for $KVER"
  case "$f" in
    *.ko) cp "$f" "$R/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
  esac
done
cat > "$R/bin/guest-clock" <<'CLOCK'
#!/bin/sh
read -r up _ < /proc/uptime
echo "$up"
CLOCK
chmod 0755 "$R/bin/guest-clock"
cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
ip=""
for arg in $(cat /proc/cmdline); do case "$arg" in bo.ip=*) ip=${arg#bo.ip=} ;; esac; done
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -n "$ip" ] && ip addr add "$ip" dev eth0
ip link set eth0 up
( while true; do nc -ll -p 7 -e cat; sleep 1; done ) </dev/null >/dev/console 2>&1 &
( while true; do nc -ll -p 8 -e /bin/guest-clock; sleep 1; done ) </dev/null >/dev/console 2>&1 &
echo "blackout-libvirt-guest ready ip=$ip"
while true; do sleep 3600; done
INIT
chmod 0755 "$R/init"
cp "/boot/vmlinuz-$KVER" "$WORK/out/vmlinuz"
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -6 > "$WORK/out/initramfs.cpio.gz"
chmod 0644 "$WORK/out/vmlinuz" "$WORK/out/initramfs.cpio.gz"
rm -rf "$OUT"; mv "$WORK/out" "$OUT"
echo "$OUT"
