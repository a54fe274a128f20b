-- Seeds the midnight burst: 1,000 users with 2 personal variables each and :n crons that are
-- all due (next_run = today's 00:00 UTC), spread round-robin over the users, with a realistic
-- manifest (2 sources, 2 stages, 3 jobs, an artifact, 2 env entries) that differs per cron
-- (URLs, binary name), so nothing can be shared between crons. Set-based; run as superuser
-- with psql -v n=<crons> -v due=<true|false> (due=false: next_run tomorrow, for the idle pass).
SET TIME ZONE 'UTC';
\set ON_ERROR_STOP 1

INSERT INTO users (id, email, username, password, created_at)
SELECT u, 'user' || u || '@example.com', 'user' || u, '\x00', now() - interval '1 year'
FROM generate_series(1, 1000) AS u;
SELECT setval('users_id_seq', 1000);

INSERT INTO variables (user_id, author_id, namespace_id, key, value, masked, created_at)
SELECT u, u, NULL, v.key, v.value || u, v.masked, now() - interval '1 year'
FROM generate_series(1, 1000) AS u
CROSS JOIN (VALUES ('GOPROXY', 'https://proxy.golang.org/', false),
                   ('API_TOKEN', 'c2VjcmV0LWVuY3J5cHRlZC1ieS1kamlubg==', true))
  AS v(key, value, masked)
ORDER BY u, v.key;

INSERT INTO cron (id, user_id, author_id, namespace_id, name, schedule, manifest, next_run,
                  created_at)
SELECT i, u, u, NULL, 'nightly build ' || i,
       (ARRAY['daily', 'weekly', 'monthly']::schedule[])[1 + i % 3],
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
$m$, i, u),
       CASE WHEN :'due' THEN date_trunc('day', now() AT TIME ZONE 'UTC')
            ELSE date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day' END,
       now() - interval '30 days'
FROM generate_series(1, :n) AS i, LATERAL (SELECT 1 + (i - 1) % 1000 AS u) AS x;
SELECT setval('cron_id_seq', greatest(:n, 1));

VACUUM ANALYZE;
CHECKPOINT;
