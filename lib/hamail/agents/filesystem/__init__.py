"""ocf:hamail:Filesystem: agent (parameters and actions) and mounts (mountinfo, devices, holders in /proc)."""
