#!/bin/sh
# Builds a function image as a root filesystem tarball: Debian's busybox-static, and a CGI
# script that busybox httpd serves on port 8080 (a complete Direktiv HTTP function).
#
#   examples/build-busybox-function.sh SCRIPT OUT.tar
#   faasbox image import OUT.tar --name NAME --entrypoint '/bin/busybox httpd -f -p 8080 -h /www'
set -eu
script=$1
out=$2
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/www/cgi-bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh cat echo printf sed wget sleep head tr ip awk grep ls env; do
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cp "$script" "$root/www/cgi-bin/index.cgi"
chmod 0755 "$root/www/cgi-bin/index.cgi"
tar -C "$root" --numeric-owner -cf "$out" .
