-- Reverse of membership_own_rows.sql.
DROP POLICY IF EXISTS membership_own_rows ON {table};
