SELECT 1; -- nothing to undo: the column goes with the migration before
