#!/usr/bin/env bash
# Install what building and testing srvd needs on Debian, only what is missing (idempotent):
#   protoc (protobuf-compiler) for etcd-client's protobufs, etcd (etcd-server) and etcdctl
#   (etcd-client) for the tests, dig (bind9-dnsutils), kdig (knot-dnsutils), unshare/mount
#   (util-linux, mount), getent (libc-bin), openssl, and the real peers the tests run against:
#   knotd (knot), nsd, named (bind9), dnsmasq, unbound, musl-gcc (musl-tools),
#   systemd-analyze (systemd).
set -euo pipefail

declare -A need=(
  [protoc]=protobuf-compiler
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [dig]=bind9-dnsutils
  [kdig]=knot-dnsutils
  [unshare]=util-linux
  [mount]=mount
  [getent]=libc-bin
  [openssl]=openssl
  [knotd]=knot
  [nsd]=nsd
  [named]=bind9
  [dnsmasq]=dnsmasq
  [unbound]=unbound
  [musl-gcc]=musl-tools
  [systemd-analyze]=systemd
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Daemons from these packages must not be started by the package scripts (they would take
# port 53): policy-rc.d says no while installing.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
[ -n "$created_policy" ] && $sudo rm -f "$policy"
exit 0
