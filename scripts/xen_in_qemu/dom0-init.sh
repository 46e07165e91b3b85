#!/bin/sh
# dom0's init (booted with init=/xlsnap-tier/init): mount what xl needs, start the Xen
# daemons, run the scenarios (their lines go to hvc0, which Xen forwards to the serial
# console), power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
mkdir -p /run/xen /var/run/xen /var/lib/xen
mount -t xenfs xenfs /proc/xen 2>/dev/null
for m in xen-evtchn xen-gntdev xen-gntalloc xen-blkback xen-privcmd; do modprobe "$m" 2>/dev/null; done
echo "XLSNAP-TIER dom0 UP" > /dev/hvc0
/etc/init.d/xen start > /dev/hvc0 2>&1
python3 /xlsnap-tier/scenarios.py > /dev/hvc0 2>&1
echo "XLSNAP-TIER DONE" > /dev/hvc0
sync
echo o > /proc/sysrq-trigger
sleep 60
