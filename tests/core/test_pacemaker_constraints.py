# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.pacemaker.constraints against Pacemaker's real cibadmin on a CIB file (CIB_file: no cluster needed):
create, a second create of the same id, read back, delete; and the old role name on an old schema."""

import shutil
import subprocess

import pytest

from hamail.pacemaker import constraints as c
from hamail.system.clock import Deadline
from hamail.system.runner import CommandRunner

if not shutil.which("cibadmin"):
    pytest.skip("needs pacemaker-cli-utils (cibadmin)", allow_module_level=True)

CID = "drbd-fence-by-handler-r0-drbd-r0-clone"
# rsc is an IDREF in every schema: the clone must exist for the constraint to validate.
CLONE = ('<clone id="drbd-r0-clone"><primitive id="drbd-r0" class="ocf" provider="hamail" type="drbd"/></clone>')


def cib_file(tmp_path, schema):
    """An empty CIB file of the given schema, and a runner whose tools use it."""
    path = tmp_path / "cib.xml"
    path.write_text(subprocess.run(["cibadmin", "--empty", schema], capture_output=True, text=True,
                                   check=True, timeout=30).stdout)
    subprocess.run(["cibadmin", "--create", "--scope", "resources", "--xml-text", CLONE], check=True, timeout=30,
                   capture_output=True, env={"PATH": "/usr/sbin:/usr/bin", "CIB_file": str(path)})
    return c.Constraints(CommandRunner({"PATH": "/usr/sbin:/usr/bin", "CIB_file": str(path)}),
                         Deadline.after(60))


def test_create_read_back_exists_delete(tmp_path):
    """The constraint lands in the CIB as built; a second create reports it exists; delete removes it."""
    cib = cib_file(tmp_path, "pacemaker-3.9")
    want = c.role_only_on(CID, "drbd-r0-clone", c.role_name(cib.query()), "pair-a")
    assert cib.create(want) is True
    assert c.same_constraint(c.find_by_id(cib.query(), "rsc_location", CID), want)
    assert cib.create(want) is False
    cib.delete("rsc_location", CID)
    assert c.find_by_id(cib.query(), "rsc_location", CID) is None
    cib.delete("rsc_location", CID)  # absent: fine


def test_old_schema_gets_the_old_role_name(tmp_path):
    """A CIB still on pacemaker-3.0 (its rules take any role text, and a Pacemaker before 2.1 would never match
    "Promoted": a void ban) gets Master, which it stores."""
    cib = cib_file(tmp_path, "pacemaker-3.0")
    assert c.role_name(cib.query()) == "Master"
    want = c.role_only_on(CID, "drbd-r0-clone", "Master", "pair-a")
    assert cib.create(want) is True
    assert c.same_constraint(c.find_by_id(cib.query(), "rsc_location", CID), want)
