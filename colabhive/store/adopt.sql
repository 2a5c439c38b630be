-- Adopting a database made before schema versioning (no schema_version table).
-- That code ran schema.sql (CREATE ... IF NOT EXISTS, which leaves an existing table as it
-- was) and then added these columns with ALTER TABLE when a table lacked them. A database
-- it left behind may lack any of them; each one missing is added here, then
-- 0001_initial.sql creates whatever tables and indexes are missing, and the database is
-- marked version 1. This list is closed: nothing new is ever added to it (a new column is
-- a new numbered migration).
ALTER TABLE tasks ADD COLUMN energy_j REAL;
ALTER TABLE tasks ADD COLUMN energy_estimated INTEGER;
ALTER TABLE tasks ADD COLUMN carbon_g REAL;
