"""Run a command and write "seconds peak_kib exit_status" of it to a file (used by bench_score.py).

A small process of its own, so that the command's ru_maxrss is its own peak: Linux carries the
parent's resident size over fork and exec into the child's maximum, and bench_score.py is large.

Usage: python -I -S bench/_run_child.py RESULT_FILE COMMAND [ARG ...]
"""

import os
import subprocess
import sys
import time

t0 = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - t0
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    f.write(f"{seconds} {usage.ru_maxrss} {child.returncode}\n")
