"""stonith:fence_ipmi: agent (options), and the IPMI device over pyghmi."""
