-- A database that has lived: :history finished builds of the past year with every row Djinn's
-- server and scheduler write for a build (trigger, tag, driver, copied variables, stages, jobs,
-- an artifact), spread round-robin over the users 1..:users (which must exist), numbered 1..k per
-- user in created_at order. One in :cron_every of them is a cron build (a cron_builds row, on the
-- crons 1..:crons, which must exist; :crons 0: none). Run as superuser after the users and crons:
--   psql -v history=1000000 -v users=1000 -v crons=1000000 -v cron_every=2 -f lived.sql
-- Set-based; the ids come from the tables' own sequences, which are set past them at the end.
SET TIME ZONE 'UTC';
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';

-- The builds first (ids 1..:history, then the sequence follows them); the other tables from them.
CREATE TEMP TABLE lived_builds AS
SELECT i AS id,
       1 + (i - 1) % :users AS user_id,
       1 + (i - 1) / :users AS number,
       (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '366 days')
         + (i::float8 / :history) * interval '365 days' AS created_at,
       CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'passed' END::status AS status,
       :crons > 0 AND i % :cron_every = 0 AS is_cron
FROM generate_series(1, :history) AS i;

INSERT INTO builds (id, user_id, namespace_id, number, manifest, status, output, secret,
                    created_at, started_at, finished_at)
SELECT b.id, b.user_id, NULL, b.number,
       format($m$driver:
  type: docker
  image: golang:1.21
  workspace: /go/src/example.com/app-%1$s
env:
- CGO_ENABLED=0
- BUILD_TAG=nightly-%1$s
sources:
- https://github.com/user%2$s/app-%1$s.git main => app
- https://github.com/user%2$s/tools.git v1.2
stages:
- test
- build
jobs:
- stage: test
  commands:
  - go vet ./...
  - go test -cover ./...
- stage: test
  name: lint
  commands:
  - golangci-lint run
- stage: build
  commands:
  - go build -o bin/app-%1$s ./cmd/app
  artifacts:
  - bin/app-%1$s
$m$, b.id % 20000, b.user_id),
       b.status, NULL, md5(b.id::text), b.created_at, b.created_at + interval '5 seconds',
       b.created_at + interval '3 minutes'
FROM lived_builds b;
SELECT setval('builds_id_seq', greatest((SELECT max(id) FROM builds), 1));

INSERT INTO build_triggers (build_id, provider_id, repo_id, type, comment, data)
SELECT b.id, NULL, NULL,
       CASE WHEN b.is_cron THEN 'schedule' ELSE 'manual' END::trigger_type,
       CASE WHEN b.is_cron THEN 'nightly build ' || b.id || ': Scheduled build, next run '
            ELSE 'Submitted by hand' END,
       json_build_object('email', 'user' || b.user_id || '@example.com',
                         'username', 'user' || b.user_id)
FROM lived_builds b;

INSERT INTO build_tags (user_id, build_id, name, created_at)
SELECT b.user_id, b.id, CASE WHEN b.is_cron THEN 'cron:nightly-build-' || b.id ELSE 'manual' END,
       b.created_at
FROM lived_builds b;

INSERT INTO build_drivers (build_id, type, config)
SELECT b.id, 'docker', '{"image":"golang:1.21","type":"docker","workspace":"/go/src/app"}'::json
FROM lived_builds b;

INSERT INTO build_variables (build_id, variable_id, key, value, masked)
SELECT b.id, NULL, v.key, v.value, false
FROM lived_builds b
CROSS JOIN (VALUES ('CGO_ENABLED', '0'), ('BUILD_TAG', 'nightly')) AS v(key, value);

-- Stages: setup, test, build; ids in build order.
INSERT INTO build_stages (id, build_id, name, can_fail, created_at)
SELECT (b.id - 1) * 3 + s.k, b.id,
       CASE s.k WHEN 1 THEN 'setup - #' || b.number WHEN 2 THEN 'test' ELSE 'build' END,
       false, b.created_at + s.k * interval '1 microsecond'
FROM lived_builds b CROSS JOIN generate_series(1, 3) AS s(k);
SELECT setval('build_stages_id_seq', greatest((SELECT max(id) FROM build_stages), 1));

-- Jobs: create-driver, clone.1, clone.2 in setup; test.1 and lint in test; build.1 in build.
INSERT INTO build_jobs (id, build_id, stage_id, name, commands, status, output, created_at,
                        started_at, finished_at)
SELECT (b.id - 1) * 6 + j.k, b.id, (b.id - 1) * 3 + j.stage, j.name, j.commands, b.status,
       'ok', b.created_at + (3 + j.k) * interval '1 microsecond',
       b.created_at + interval '5 seconds', b.created_at + interval '3 minutes'
FROM lived_builds b
CROSS JOIN (VALUES
  (1, 1, 'create-driver', ''),
  (2, 1, 'clone.1', E'mkdir -p app\ngit clone -q https://github.com/user/app.git app\ncd app\ngit checkout main'),
  (3, 1, 'clone.2', E'mkdir -p tools\ngit clone -q https://github.com/user/tools.git tools\ncd tools\ngit checkout v1.2'),
  (4, 2, 'test.1', E'go vet ./...\ngo test -cover ./...'),
  (5, 2, 'lint', 'golangci-lint run'),
  (6, 3, 'build.1', 'go build -o bin/app ./cmd/app')) AS j(k, stage, name, commands);
SELECT setval('build_jobs_id_seq', greatest((SELECT max(id) FROM build_jobs), 1));

INSERT INTO build_artifacts (user_id, build_id, job_id, hash, source, name, size, md5, sha256,
                             created_at)
SELECT b.user_id, b.id, (b.id - 1) * 6 + 6, 'lived' || b.id, 'bin/app', 'app', 4096,
       decode(md5(b.id::text), 'hex'), NULL, b.created_at
FROM lived_builds b;

INSERT INTO cron_builds (cron_id, build_id, created_at)
SELECT 1 + (b.id - 1) % greatest(:crons, 1), b.id, b.created_at
FROM lived_builds b WHERE b.is_cron ORDER BY b.id;

DROP TABLE lived_builds;
VACUUM ANALYZE;
CHECKPOINT;
