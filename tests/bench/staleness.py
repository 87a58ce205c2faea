"""Measures how long a committed change takes to reach clients under load.

    python3 tests/bench/staleness.py URL TOKEN UPDATES -- MARIADB_COMMAND...

While wrk keeps the service busy, this script commits UPDATES changes to
image 1, one every 2 s, each through a new run of MARIADB_COMMAND (the
`mariadb` client with its connection options), and polls image 1 every
10 ms until the new description is served. It prints one line
`staleness DELAY_MS` per change and a summary line `staleness median MS max
MS`. The delay runs from the return of the client, which happens after the
commit, to the first fresh response, so it can be short by the client's
exit time, a few milliseconds.
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.request


def fetch_description(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["description"]


def main():
    separator = sys.argv.index("--")
    base_url, token, updates = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mariadb_command = sys.argv[separator + 1 :]
    image_url = f"{base_url}/aries/api/v1/image/1"
    delays = []
    for index in range(updates):
        marker = f"staleness-{time.time_ns()}-{index}"
        subprocess.run(
            [*mariadb_command, "-e", f"UPDATE images SET description = '{marker}' WHERE id = 1"],
            check=True,
        )
        committed = time.monotonic()
        while fetch_description(image_url, token) != marker:
            if time.monotonic() - committed > 30:
                sys.exit(f"error: change {index} not served within 30 s")
            time.sleep(0.01)
        delay_ms = (time.monotonic() - committed) * 1000
        delays.append(delay_ms)
        print(f"staleness {delay_ms:.0f}", flush=True)
        time.sleep(2)
    print(f"staleness median {statistics.median(delays):.0f} max {max(delays):.0f}")


if __name__ == "__main__":
    main()
