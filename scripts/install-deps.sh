#!/usr/bin/env bash
# Installs what faasbox needs on Debian 12 (run as root): the OCI runtimes (runc, crun for
# --oci-runtime crun, runsc; libseccomp-dev to build faasbox-oci, the runtime of
# --oci-runtime libcontainer, which links libseccomp statically), user-mode
# networking (slirp4netns, the default network helper, and passt for --network-helper pasta;
# a server without passt runs with the default), busybox for the example and test images, the image tools the tests use,
# mmdebstrap for the tests' Debian root filesystems (the Python 3 and Node.js base images of
# the functions-from-code tests, and the cgroup v2 virtual machine, run with qemu), and python3
# and nodejs for the agent's code-contract tests, which run the host's interpreters, and
# chromium with chromium-driver for the web UI's browser tests, and postgresql for the PostgreSQL
# store's tests (they run their own throwaway cluster).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "faasbox runs containers and must be set up as root (try: sudo $0)" >&2
  exit 1
fi
packages=(runc crun runsc libseccomp-dev passt slirp4netns iproute2 busybox-static skopeo umoci docker-registry apache2-utils curl ca-certificates
          qemu-system-x86 mmdebstrap e2fsprogs python3 nodejs chromium chromium-driver postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's own service is not wanted: tests start their own registries.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
pkill -x docker-registry 2>/dev/null || true
# Nor is PostgreSQL's: tests run their own clusters in temporary directories.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo (Rust 1.85 or newer) is needed to build faasbox: install it with rustup (https://rustup.rs)" >&2
  exit 1
fi
