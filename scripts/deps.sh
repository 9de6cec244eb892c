#!/usr/bin/env bash
# Install what building and testing srvd needs on Debian, only what is missing (idempotent):
#   protoc (protobuf-compiler) for etcd-client's protobufs, etcd (etcd-server) for the tests,
#   etcdctl (etcd-client), dig (bind9-dnsutils), unshare/mount (util-linux), getent (libc-bin).
set -euo pipefail

declare -A need=(
  [protoc]=protobuf-compiler
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [dig]=bind9-dnsutils
  [unshare]=util-linux
  [getent]=libc-bin
  [openssl]=openssl
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
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
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
