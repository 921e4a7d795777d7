-- The per-host loss report: one line per capture host and DNS server.
SELECT * FROM loss_by_host
