"""The fence-agent contract: options (stdin and command line), metadata and help, the power state machine,
exact exit codes and one readable error line. Agents live in hamail.agents (e.g. fence_ipmi)."""
