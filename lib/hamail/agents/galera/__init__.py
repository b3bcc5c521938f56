"""ocf:hamail:galera: agent (parameters and actions), recovery (the pure bootstrap decision), positions
(grastate.dat, gvwstate.dat, --wsrep-recover), server (the mariadbd process)."""
