# SPDX-License-Identifier: GPL-2.0-or-later
"""The seams to the operating system that every agent shares.

clock (time, deadlines, polling), runner (every external program: argv only, bounded, secrets on stdin, a
cleaned environment; spawn for daemons that outlive the action), bounded (a call that must not outlive its
deadline: in a thread, or in a child process when it may hang in the kernel), proc (the one /proc reader),
files (atomic replacement and small state files), log (scrubbing secrets, log levels). Nothing here knows
OCF, fencing or Pacemaker.
"""
