# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:cyrus: Cyrus IMAP's master process, monitored over IMAP, POP3 and LMTP (BlueMind's mail store)."""
