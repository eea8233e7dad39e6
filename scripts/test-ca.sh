#!/usr/bin/env bash
# Makes a private test CA and a certificate for 127.0.0.1 signed by it, in DIR:
# ca.pem (the CA to trust), cert.pem + key.pem (the server's). For the tests' HTTPS servers
# (the Redfish emulator, the OpenID provider): nothing trusts this CA unless told.
set -euo pipefail
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lqx test CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout key.pem -out req.pem 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in req.pem -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile ext.cnf -out cert.pem 2>/dev/null
