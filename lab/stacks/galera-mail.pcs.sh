#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The Galera mail cluster of galera-mail.crm, with pcs instead of crmsh (same resources, groups and constraints;
# pcs adds its default start/stop operations). Usage: galera-mail.pcs.sh [CIB-FILE] (pcs -f: edit a file offline).
# The lab's tests apply it to an empty CIB inside a lab node and compare the result with what crm configured.
set -eu
CIB_FILE=${1:-}
pcs() { command pcs ${CIB_FILE:+-f "$CIB_FILE"} "$@"; }

pcs property set stonith-enabled=true
pcs resource defaults update resource-stickiness=100
pcs resource create db ocf:hamail:galera binary=/usr/sbin/mariadbd \
    config=/var/lib/hamail-lab-node/galera/my.cnf datadir=/var/lib/hamail-lab-node/galera/data \
    log=/var/lib/hamail-lab-node/galera/error.log pid=/run/hamail-galera/mysqld.pid \
    socket=/run/hamail-galera/mysqld.sock wsrep_cluster_address=gcomm://node1,node2,node3 \
    op start timeout=120s interval=0s stop timeout=120s interval=0s \
       promote timeout=300s interval=0s demote timeout=120s interval=0s \
       monitor interval=10s role=Promoted timeout=30s monitor interval=11s role=Unpromoted timeout=30s \
    promotable promoted-max=3 notify=true
pcs resource create db-vip ocf:hamail:IPaddr2 ip=192.0.2.101 cidr_netmask=24 \
    op monitor interval=10s timeout=20s
pcs constraint colocation add db-vip with Promoted db-clone INFINITY
pcs constraint order promote db-clone then start db-vip kind=Mandatory

pcs resource create mail-vip ocf:hamail:IPaddr2 ip=192.0.2.100 cidr_netmask=24 \
    op monitor interval=10s timeout=20s --group mail
pcs resource create ldap ocf:hamail:slapd config=/srv/hamail-lab/ldap/slapd.conf services=ldap:/// \
    bind_dn=cn=admin,dc=example,dc=test password_file=/srv/hamail-lab/ldap/bind.pw \
    watch_suffix=dc=example,dc=test \
    op start timeout=60s interval=0s stop timeout=60s interval=0s monitor interval=10s timeout=20s \
       monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10 --group mail
pcs resource create imap ocf:hamail:dovecot config_file=/srv/hamail-lab/dovecot/dovecot.conf \
    credentials_file=/srv/hamail-lab/dovecot/probe.cred \
    op start timeout=60s interval=0s stop timeout=60s interval=0s monitor interval=10s timeout=20s \
       monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10 --group mail
pcs resource create smtp ocf:hamail:postfix config_dir=/srv/hamail-lab/postfix/etc \
    probe_address=probe@example.test probe_imap=127.0.0.1:143 \
    credentials_file=/srv/hamail-lab/dovecot/probe.cred \
    op start timeout=60s interval=0s stop timeout=60s interval=0s monitor interval=10s timeout=20s \
       monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10 \
       monitor interval=300s timeout=60s OCF_CHECK_LEVEL=20 --group mail
pcs resource create webmail ocf:hamail:nginx configfile=/srv/hamail-lab/nginx/nginx.conf \
    status10url=http://127.0.0.1/nginx_status \
    op start timeout=60s interval=0s stop timeout=60s interval=0s monitor interval=10s timeout=20s \
       monitor interval=60s timeout=30s OCF_CHECK_LEVEL=10 --group mail
