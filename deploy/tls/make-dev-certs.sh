#!/bin/sh
# Development / pilot TLS material for docker-compose.yml: a private CA, and a server
# certificate for the coordinator signed by it (SAN DNS:coordinator, the compose service
# name agents dial, DNS:localhost, and IP:127.0.0.1 and IP:::1 so that loopback addresses work
# too; an argument that is an IPv4/IPv6 address becomes an IP SAN). For production, use certificates from your PKI and
# keep the same file names. Writes into this script's directory; refuses to overwrite.
#
#   deploy/tls/make-dev-certs.sh [extra-dns-name-or-ip ...]   e.g. fl.example.org 10.0.0.5
set -eu

dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cd "$dir"
days=${DAYS:-825}   # the longest server-certificate lifetime clients commonly accept

for f in ca.crt ca.key coordinator.crt coordinator.key; do
  if [ -e "$f" ]; then echo "make-dev-certs: $dir/$f exists; remove the old files first" >&2; exit 1; fi
done

san="DNS:coordinator,DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  case "$name" in
    *:*|[0-9]*.[0-9]*.[0-9]*.[0-9]*) san="$san,IP:$name" ;;
    *) san="$san,DNS:$name" ;;
  esac
done

# Keys are created without group/other access from the first byte.
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout ca.key -out ca.crt -days "$days" -subj "/CN=fedlhs dev CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout coordinator.key -out coordinator.csr -subj "/CN=coordinator"
ext=$(mktemp)
trap 'rm -f "$ext" coordinator.csr' EXIT
printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$ext"
openssl x509 -req -in coordinator.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
  -out coordinator.crt -days "$days" -extfile "$ext"
rm -f ca.srl
chmod 0644 ca.crt coordinator.crt
chmod 0600 ca.key coordinator.key

echo "make-dev-certs: wrote ca.crt, coordinator.crt (SAN $san) and their keys in $dir"
# Compose bind-mounts the key with its host owner and mode; the coordinator runs as uid 1000.
if [ "$(id -u)" != 1000 ]; then
  echo "make-dev-certs: the container user (uid 1000) must be able to read coordinator.key:" >&2
  echo "  sudo chown 1000 $dir/coordinator.key" >&2
fi
echo "make-dev-certs: keep ca.key offline; the agents need only ca.crt"
