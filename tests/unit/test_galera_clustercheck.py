# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading heartbeat's clustercheck file (a shell fragment) without running it."""

import pytest

from hamail.agents.galera.server import _shell_assignments

NAMES = ("MYSQL_USERNAME", "MYSQL_PASSWORD")


@pytest.mark.parametrize("text,expected", [
    ("MYSQL_USERNAME=clustercheck\nMYSQL_PASSWORD=s3cret\n", {"MYSQL_USERNAME": "clustercheck",
                                                              "MYSQL_PASSWORD": "s3cret"}),
    ('# installer\nexport MYSQL_USERNAME="check user"\nMYSQL_PASSWORD=\'p w#d\'  # trailing comment\n',
     {"MYSQL_USERNAME": "check user", "MYSQL_PASSWORD": "p w#d"}),
    ("MYSQL_PASSWORD=first\nMYSQL_PASSWORD=second\n", {"MYSQL_PASSWORD": "second"}),  # the last one wins
    ("MYSQL_PASSWORD=\n", {"MYSQL_PASSWORD": ""}),
    ("MYSQL_HOST=db\nmysql_username=lower\n", {}),  # other names, case matters as in the shell
    ('MYSQL_PASSWORD="unterminated\n', {}),  # unparsable: ignored, never guessed
    ("MYSQL_PASSWORD=$(cat /etc/secret)\nMYSQL_USERNAME=\"$USER\"\n", {}),  # expansions: never run, skipped
    ("MYSQL_PASSWORD='pa$$w`d'\n", {"MYSQL_PASSWORD": "pa$$w`d"}),  # single quotes: literal, as in the shell
])
def test_shell_assignments(text, expected):
    assert _shell_assignments(text, NAMES) == expected
