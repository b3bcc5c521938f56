"""The agents' logic; the executables in agents/ are thin wrappers around these modules."""
