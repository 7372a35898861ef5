#!/bin/sh
# The official rabbitmq image's contract, for the stand-in: RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS.
set -eu
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
loopback_users = none
listeners.tcp.default = 5672
management.tcp.port = 15672
CONF
cd /var/lib/rabbitmq
exec /usr/lib/rabbitmq/bin/rabbitmq-server
