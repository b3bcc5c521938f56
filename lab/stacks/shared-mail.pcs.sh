#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The shared-storage mail cluster of shared-mail.crm, with pcs instead of crmsh (same resources and group;
# pcs adds its default start/stop operations). Usage: shared-mail.pcs.sh [CIB-FILE] (pcs -f: edit a file
# offline). The lab's tests apply it to an empty CIB inside a lab node and compare it with what crm configured.
set -eu
CIB_FILE=${1:-}
pcs() { command pcs ${CIB_FILE:+-f "$CIB_FILE"} "$@"; }

pcs property set stonith-enabled=true
pcs resource defaults update resource-stickiness=100
pcs resource create shared-fs ocf:hamail:Filesystem device=LABEL=hamail-hml directory=/srv/hamail-data \
    fstype=ext4 \
    op start timeout=60s interval=0s stop timeout=60s interval=0s monitor interval=10s timeout=40s \
       monitor interval=30s timeout=40s OCF_CHECK_LEVEL=20 --group mail
pcs resource create mail-vip ocf:hamail:IPaddr2 ip=192.0.2.100 cidr_netmask=24 \
    op monitor interval=10s timeout=20s --group mail
pcs resource create db ocf:hamail:mysql binary=/usr/sbin/mariadbd config=/srv/hamail-lab/mysql/my.cnf \
    datadir=/srv/hamail-data/mysql log=/srv/hamail-data/mysql-error.log pid=/run/hamail-mysql/mysqld.pid \
    socket=/run/hamail-mysql/mysqld.sock \
    op start timeout=120s interval=0s stop timeout=120s interval=0s monitor interval=10s timeout=30s \
    --group mail
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
