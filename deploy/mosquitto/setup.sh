#!/bin/sh
# Prepares Debian's Mosquitto 2 as the external broker of a Pallas cluster (run as root):
#   deploy/mosquitto/setup.sh <manager-password> [admin-password]
# 1. installs mosquitto.conf as /etc/mosquitto/mosquitto.conf (the previous one kept as
#    mosquitto.conf.orig) and pallas.acl as /etc/mosquitto/pallas.acl,
# 2. writes the dynamic-security file with its default access set to deny everywhere (the
#    plugin then defers to pallas.acl; see mosquitto.conf), an admin client for operators, and
#    the managers' client `pallas-manager` with the role that lets it drive the plugin.
# The TLS certificate and key (/etc/mosquitto/certs/broker.{crt,key}) are yours to provide.
# The devices' role `pallas-device` (which subscriptions a device may make) is made by the
# managers themselves, at their first start on the broker.
# Then: systemctl restart mosquitto, and start each manager with
#   --broker-url mqtts://pallas-manager:<manager-password>@<broker host>:8883 [--broker-ca <ca.pem>]
set -eu
MANAGER_PASSWORD=${1:?usage: setup.sh <manager-password> [admin-password]}
ADMIN_PASSWORD=${2:-$(head -c 18 /dev/urandom | base64)}
HERE=$(dirname "$0")
DYNSEC=/var/lib/mosquitto/dynamic-security.json

[ -e /etc/mosquitto/mosquitto.conf.orig ] || cp -p /etc/mosquitto/mosquitto.conf /etc/mosquitto/mosquitto.conf.orig 2>/dev/null || true
install -m 0644 "$HERE/mosquitto.conf" /etc/mosquitto/mosquitto.conf
install -m 0644 "$HERE/pallas.acl" /etc/mosquitto/pallas.acl
install -d -o mosquitto -g mosquitto -m 0700 /var/lib/mosquitto

if [ -e "$DYNSEC" ]; then
  echo "$DYNSEC exists; leaving it as it is" >&2
else
  mosquitto_ctrl dynsec init "$DYNSEC" admin "$ADMIN_PASSWORD" >/dev/null
  # Deny by default on every access the plugin decides (its init allows receiving by default).
  sed -i 's/"publishClientReceive":[[:space:]]*true/"publishClientReceive": false/' "$DYNSEC"
  chown mosquitto:mosquitto "$DYNSEC"
  chmod 0600 "$DYNSEC"
  echo "dynamic-security admin: admin / $ADMIN_PASSWORD (keep it; managers do not use it)"
fi

cat <<NEXT
Restart Mosquitto, then create the managers' client once (over TLS, as the admin):
  C="mosquitto_ctrl -h <broker host> -p 8883 --cafile <ca.pem> -u admin -P <admin password> dynsec"
  \$C createRole pallas-manager
  \$C addRoleACL pallas-manager publishClientSend '\$CONTROL/dynamic-security/#' allow
  \$C addRoleACL pallas-manager publishClientReceive '\$CONTROL/dynamic-security/#' allow
  \$C addRoleACL pallas-manager subscribePattern '\$CONTROL/dynamic-security/#' allow
  \$C createClient pallas-manager -p '$MANAGER_PASSWORD'
  \$C addClientRole pallas-manager pallas-manager
NEXT
