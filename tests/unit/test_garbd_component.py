# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading garbd's component from its log: the last COMPONENT line wins, a cursor reads only what is new, a
half-written line waits, a rotated or truncated log is read from its start and keeps the last state seen."""

import os

from hamail.agents.garbd import component
from hamail.agents.garbd.component import NON_PRIMARY, PRIMARY, UNKNOWN, Cursor

PRIM = "2026-12-02 10:56:43.119  INFO: New COMPONENT: primary = yes, bootstrap = no, my_idx = 1, memb_num = 2\n"
NONPRIM = "2026-12-02 10:56:53.631  INFO: New COMPONENT: primary = no, bootstrap = no, my_idx = 0, memb_num = 1\n"
NOISE = "2026-12-02 10:56:43.119  INFO: Shifting OPEN -> PRIMARY (TO: 2)\n"


def test_last_component_line_wins():
    assert component.last_component(NOISE) == UNKNOWN
    assert component.last_component(NOISE, PRIMARY) == PRIMARY
    assert component.last_component(PRIM + NOISE) == PRIMARY
    assert component.last_component(PRIM + NONPRIM + NOISE) == NON_PRIMARY
    assert component.last_component(NONPRIM + PRIM) == PRIMARY


def test_cursor_reads_what_is_new_and_survives_rotation(tmp_path):
    log = tmp_path / "garbd.log"
    log.write_text(PRIM)  # a previous run's line: not this start's
    cursor = component.start_cursor(str(log))
    assert component.advance(str(log), cursor).state == UNKNOWN
    with open(log, "a") as handle:
        handle.write(NOISE + PRIM[:40])  # garbd is still writing the line
    cursor = component.advance(str(log), cursor)
    assert cursor.state == UNKNOWN
    with open(log, "a") as handle:
        handle.write(PRIM[40:])
    cursor = component.advance(str(log), cursor)
    assert cursor.state == PRIMARY and cursor.offset == os.path.getsize(log)
    assert Cursor.parse(cursor.text()).text() == cursor.text()
    # logrotate with copytruncate, then create: the state read so far stays until garbd logs a change.
    log.write_text(NOISE)
    cursor = component.advance(str(log), cursor)
    assert cursor.state == PRIMARY
    log.unlink()
    log.write_text(NONPRIM)
    assert component.advance(str(log), cursor).state == NON_PRIMARY
    assert component.advance(str(tmp_path / "absent"), cursor).state == PRIMARY


def test_unreadable_cursor_records_are_none():
    for text in (None, "", "x y z w", "1 2 3", "1 2 -3 primary"):
        assert Cursor.parse(text) is None


def test_own_id_is_the_last_listening_line():
    log = ("2026-12-02 17:29:46.310  INFO: GMCast version 0\n"
           "2026-12-02 17:29:46.310  INFO: (f7ea44f7-8b86, 'tcp://0.0.0.0:14599') listening at tcp://0.0.0.0:14599\n"
           "2026-12-02 17:29:46.310  INFO: (f7ea44f7-8b86, 'tcp://0.0.0.0:14599') multicast: , ttl: 1\n"
           "2026-12-02 17:31:00.000  INFO: (0A1B2C3D-4e5f, 'tcp://0.0.0.0:4567') listening at tcp://0.0.0.0:4567\n")
    assert component.own_id(log) == "0a1b2c3d-4e5f"
    assert component.own_id(log.splitlines()[0]) is None
    assert component.own_id("(nothex00-zzzz, 'tcp://x') listening at tcp://x") is None
