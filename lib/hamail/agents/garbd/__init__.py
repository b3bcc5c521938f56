"""ocf:hamail:garbd: the Galera arbitrator (a quorum-only member), with its component read from garbd's log."""
