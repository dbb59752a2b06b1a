-- Reverse of lease_lost.sql.
DROP FUNCTION IF EXISTS jobs_lease_lost(bigint);
