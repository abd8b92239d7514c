-- A table of 600,000 rows written to a file database in one
-- statement, indexed, then queried, updated and deleted from: the page
-- cache, file writes and the B-tree code.
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600000)
INSERT INTO t SELECT i, i % 997, printf('name-%08d', (i * 7919) % 1000003), (i % 1013) * 0.5 FROM n;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp ON t(grp, val);
SELECT grp, count(*), sum(val) FROM t GROUP BY grp ORDER BY sum(val) DESC LIMIT 5;
SELECT count(*) FROM t a JOIN t b ON a.name = b.name WHERE a.grp < 50;
SELECT name FROM t WHERE name LIKE 'name-0000%' ORDER BY name LIMIT 3;
UPDATE t SET val = val + 1 WHERE grp % 3 = 0;
DELETE FROM t WHERE grp % 5 = 0;
SELECT count(*), printf('%.1f', sum(val)) FROM t;
