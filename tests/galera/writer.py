# SPDX-License-Identifier: GPL-2.0-or-later
"""Inside a lab node: insert ids into hamail_test.counter forever, print each acknowledged id (test helper)."""

import sys
import time

sys.path.append("/usr/lib/python3/dist-packages")
import pymysql  # noqa: E402


def main() -> None:
    """Insert 1, 2, 3... reconnecting after failures; an id is printed only after COMMIT returned."""
    socket_path, next_id = sys.argv[1], int(sys.argv[2])
    conn = None
    while True:
        try:
            if conn is None:
                conn = pymysql.connect(unix_socket=socket_path, user="root", connect_timeout=2, read_timeout=5,
                                       write_timeout=5, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("INSERT INTO hamail_test.counter (id) VALUES (%s)", (next_id,))
            print(next_id, flush=True)
            next_id += 1
            time.sleep(0.01)
        except pymysql.err.IntegrityError:
            next_id += 1  # committed, but the acknowledgement was lost: never counted as acknowledged
        except Exception:
            try:
                if conn is not None:
                    conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.3)


if __name__ == "__main__":
    main()
