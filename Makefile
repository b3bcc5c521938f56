# SPDX-License-Identifier: GPL-2.0-or-later
# hamail: the two commands README.md opens with are `make lab` and `make test`.
# Everything runs as root on a Debian 12 machine; scripts/ensure-deps installs what is missing.

PYTHON := /usr/bin/python3
LAB_DIR ?= /var/tmp/hamail-lab
PYTEST_ARGS ?=

.PHONY: all deps lab lab-down lab-status lab-send lab-read drill soak test test-fast bench deb rpm clean

all: test

deps:
	scripts/ensure-deps

# The main job: a real 3-node Pacemaker cluster on this machine, running hamail's agents. STACK=galera (the
# Galera mail cluster, the default) or STACK=shared (one shared disk); drill and soak check STACK when given.
STACK ?=
lab: deps
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) --stack $(or $(STACK),galera) up

lab-down:
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) down

# A mail user of the running lab: send to the mail VIP over SMTP, read the mailbox over IMAP.
lab-send:
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) send
lab-read:
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) read

# One drill on the running lab (NAME=kill-service|standby|power-off|network-cut|power-loss|bmc-silent|never-returns); its row goes to bench/RESULTS.md.
drill:
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) $(if $(STACK),--stack $(STACK)) --name $(NAME) drill

# A seeded random sequence of N drills on the running lab (resumable: it goes on where it stopped), with an HTML report.
N ?= 100
SEED ?= 1
soak:
	$(PYTHON) scripts/lab --workdir $(LAB_DIR) $(if $(STACK),--stack $(STACK)) --count $(N) --seed $(SEED) soak

lab-status:
	$(PYTHON) lab/hamail_lab --workdir $(LAB_DIR) status

# The whole suite, real components included (clusters, MariaDB/Galera, BMC simulator, loop devices).
test: deps
	$(PYTHON) -m pytest -ra $(PYTEST_ARGS) tests

# Only the tests that need no cluster, database or namespace: seconds, for editing loops.
test-fast:
	HAMAIL_NO_CLUSTER=1 $(PYTHON) -m pytest -q -m 'not cluster' tests/unit tests/core

# Our agents against the Debian-installed upstream agents, alternately in one run: bench/RESULTS.md
# (BENCH=galera runs one module and only prints).
bench: deps
	cd bench && $(PYTHON) harness.py $(BENCH)

deb: deps
	packaging/build-deb

rpm: deps
	packaging/build-rpm

clean:
	rm -rf build dist .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
