-- loss_report_unfinished_ingests: capture files with rows in [{since}, {until}) but no
-- capture_stats row, i.e. an ingest that did not finish (interrupted, or stopped by an error).
-- Their rows count like any others until the same ingest runs again and replaces them. Files
-- only: ingest stores a file's absolute path as its source, while live capture (source
-- "afpacket:eth0") writes its capture_stats rows as it goes.
SELECT host, source, count() AS messages
FROM dns_messages
WHERE ts >= {since:DateTime64(9, 'UTC')} AND ts < {until:DateTime64(9, 'UTC')}
    AND startsWith(source, '/')
    AND (host, source) NOT IN (SELECT host, source FROM capture_stats WHERE startsWith(source, '/'))
GROUP BY host, source
ORDER BY host, source
