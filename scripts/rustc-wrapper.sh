#!/usr/bin/env bash
# Cargo runs every rustc of this workspace's own crates through this script
# (`build.rustc-workspace-wrapper` in .cargo/config.toml): `$1` is rustc, the rest its arguments.
#
# It links three binaries as static executables that are not position-independent
# (`-C relocation-model=static`): the agent (one per instance), faasbox-oci (executed for every
# container it creates, starts and deletes) and the echo function of the tests and benchmarks.
# A static PIE applies its relocations when it starts, which writes to every page of its
# relocated data: measured on 2026-12-07, that is 73 KiB of private memory per idle agent
# (221 -> 148 KiB; platform memory per idle instance 980 -> 870 KiB) and 127 page faults and
# about 0.3 ms of CPU per faasbox-oci command. Their inputs are the server's (faasbox-oci's
# spec, the agent's call socket) or, for the agent, its own container's function, which runs
# with the agent's rights anyway, so address randomisation of their code buys little there.
# The server (`faasbox`), which faces the network, stays position-independent.
#
# bash, not sh: Debian's sh (dash) drops environment variables whose names are not shell
# identifiers, and Cargo hands integration tests `CARGO_BIN_EXE_faasbox-agent` that way.
case "$CARGO_PKG_NAME" in
faasbox-agent | faasbox-oci-runtime | faasbox-echo-function)
  for arg in "$@"; do
    if [ "$arg" = bin ] && [ "$previous" = --crate-type ]; then
      exec "$@" -C relocation-model=static
    fi
    previous=$arg
  done
  ;;
esac
exec "$@"
