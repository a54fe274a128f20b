-- The CEILING: the fastest this PostgreSQL writes the rows one pass writes for :n due crons,
-- without the scheduler: one set-based INSERT ... SELECT per table over generate_series, and the
-- cron advance, in one transaction. Same tables, same row counts and about the same bytes as the
-- scheduler writes for the crons of seed.sql (see BENCHMARKS.md). Ids are taken arithmetically
-- on the freshly reset database (crons 1..n are the due ones; builds, stages and jobs start at 1)
-- and the sequences are set at the end; the other tables take their ids from their sequence as
-- the scheduler's statements do. Run as superuser with psql -v n=<crons>.
SET TIME ZONE 'UTC';
\set ON_ERROR_STOP 1
SELECT clock_timestamp() AS ceiling_t0 \gset
BEGIN;

-- The new next_run per schedule, as the scheduler computes it: @daily, @weekly (Sunday),
-- @monthly (the 1st), 00:00 UTC, first boundary after now.
CREATE TEMP TABLE next_runs ON COMMIT DROP AS
SELECT s::schedule AS schedule,
       CASE s WHEN 'daily' THEN date_trunc('day', now()::timestamp) + interval '1 day'
              WHEN 'weekly' THEN date_trunc('week', now()::timestamp + interval '1 day') + interval '6 days'
              ELSE date_trunc('month', now()::timestamp) + interval '1 month' END AS next_run
FROM unnest(ARRAY['daily', 'weekly', 'monthly']) AS s;

-- builds: number = the user's latest + 1 (the users have no builds yet).
INSERT INTO builds (id, user_id, namespace_id, number, manifest, status, secret, created_at)
SELECT i, c.user_id, c.namespace_id, 1 + (i - 1) / 1000, c.manifest, 'queued',
       md5(random()::text), now()::timestamp + i * interval '1 microsecond'
FROM generate_series(1, :n) AS i JOIN cron c ON c.id = i;

INSERT INTO build_triggers (build_id, type, comment, data)
SELECT i, 'schedule',
       c.name || ': Scheduled build, next run ' ||
           to_char(n.next_run, 'Dy Mon FMDD HH24:MI:SS YYYY'),
       ('{"email":"' || u.email || '","username":"' || u.username || '"}')::json
FROM generate_series(1, :n) AS i JOIN cron c ON c.id = i JOIN users u ON u.id = c.user_id
JOIN pg_temp.next_runs n ON n.schedule = c.schedule;

INSERT INTO build_tags (user_id, build_id, name)
SELECT c.user_id, i, 'cron:' || replace(c.name, ' ', '-')
FROM generate_series(1, :n) AS i JOIN cron c ON c.id = i;

INSERT INTO cron_builds (cron_id, build_id) SELECT i, i FROM generate_series(1, :n) AS i;

INSERT INTO build_drivers (build_id, type, config)
SELECT i, 'docker',
       ('{"image":"golang:1.21","type":"docker","workspace":"/go/src/example.com/app-' || i ||
        '"}')::json
FROM generate_series(1, :n) AS i;

-- The user's 2 personal variables, then the 2 env entries.
INSERT INTO build_variables (build_id, variable_id, key, value, masked)
SELECT i, v.id, v.key, v.value, v.masked
FROM generate_series(1, :n) AS i JOIN cron c ON c.id = i
JOIN variables v ON v.user_id = c.user_id AND v.namespace_id IS NULL
ORDER BY i, v.id;

INSERT INTO build_variables (build_id, variable_id, key, value, masked)
SELECT i, NULL, e.key, e.value || CASE WHEN e.k = 2 THEN i::text ELSE '' END, false
FROM generate_series(1, :n) AS i
CROSS JOIN (VALUES (1, 'CGO_ENABLED', '0'), (2, 'BUILD_TAG', 'nightly-')) AS e(k, key, value)
ORDER BY i, e.k;

-- Stages 3i-2 (setup), 3i-1 (test), 3i (build).
INSERT INTO build_stages (id, build_id, name, can_fail, created_at)
SELECT 3 * (i - 1) + s.k, i, CASE WHEN s.k = 1 THEN 'setup - #' || (1 + (i - 1) / 1000) ELSE s.name END,
       false, now()::timestamp + i * interval '1 microsecond' + s.k * interval '1 microsecond'
FROM generate_series(1, :n) AS i
CROSS JOIN (VALUES (1, ''), (2, 'test'), (3, 'build')) AS s(k, name);

-- Jobs 6i-5 .. 6i: create-driver, clone.1, clone.2 (setup), test.1, lint (test), build.1 (build).
INSERT INTO build_jobs (id, build_id, stage_id, name, commands, status, created_at)
SELECT 6 * (i - 1) + j.k, i, 3 * (i - 1) + j.stage, j.name,
       replace(replace(j.commands, '%u', (1 + (i - 1) % 1000)::text), '%i', i::text), 'queued',
       now()::timestamp + i * interval '1 microsecond' + (3 + j.k) * interval '1 microsecond'
FROM generate_series(1, :n) AS i
CROSS JOIN (VALUES
  (1, 1, 'create-driver', ''),
  (2, 1, 'clone.1', E'mkdir -p app\ngit clone -q https://github.com/user%u/app-%i.git app\ncd app\ngit checkout main'),
  (3, 1, 'clone.2', E'mkdir -p tools\ngit clone -q https://github.com/user%u/tools.git tools\ncd tools\ngit checkout v1.2'),
  (4, 2, 'test.1', E'go vet ./...\ngo test -cover ./...'),
  (5, 2, 'lint', 'golangci-lint run'),
  (6, 3, 'build.1', 'go build -o bin/app-%i ./cmd/app')) AS j(k, stage, name, commands);

INSERT INTO build_artifacts (user_id, build_id, job_id, hash, source, name, created_at)
SELECT c.user_id, i, 6 * i, 'h' || lpad(to_hex(i), 37, '0'), 'bin/app-' || i, 'app-' || i,
       now()::timestamp
FROM generate_series(1, :n) AS i JOIN cron c ON c.id = i;

UPDATE cron c SET prev_run = now()::timestamp, next_run = n.next_run
FROM pg_temp.next_runs n WHERE n.schedule = c.schedule AND c.id BETWEEN 1 AND :n;

SELECT setval('builds_id_seq', :n);
SELECT setval('build_stages_id_seq', 3 * :n);
SELECT setval('build_jobs_id_seq', 6 * :n);
COMMIT;
-- The time of the transaction, commit included (psql's connection set-up excluded, like the
-- scheduler's pass time excludes its start-up).
SELECT extract(epoch FROM clock_timestamp() - :'ceiling_t0'::timestamptz);
