-- The intake registration transaction, as pgbench runs it: the repeat lookup, then the case,
-- its petitioner, the gapless case number and the outbox row in one transaction. Same
-- statements and round trips as PgIntakeStore::register plus IntakeStore::prior_cases.
\set n random(1, 2000000000)
SELECT gen_random_uuid() AS id, upper(substr(md5(random()::text), 1, 12)) AS qc,
       (SELECT count(*) FROM (SELECT DISTINCT c.id FROM intake.cases c
          JOIN intake.petitioners p ON p.case_id = c.id
         WHERE p.id_hash = ANY(ARRAY[sha256(('id:' || :n)::bytea)])
           AND c.category = '01.01' AND c.problem_location = '140213001'
           AND c.case_number IS NOT NULL) x) AS priors \gset
BEGIN;
INSERT INTO intake.cases (id, query_code, channel, received_by, received_at, registered_at,
    registered_by, category, type_of_matter, diversion, problem_location, title, content,
    people_present, people_affected, representatives, accused_name_sealed, accused_organ,
    source_system, external_ref, fingerprint, competent_organ, flag_group, flag_leapfrog,
    flag_repeat, repeat_of_case_id, repeat_of_case_number, first_at_organ,
    open_below_case_number)
VALUES (:id, :qc, 'online', 'pingcheng.bureau', now() - interval '1 minute', now(),
    'load@pingcheng.bureau', '01.01', 'grievance', NULL, '140213001', '负载测试信访件',
    '用于测量登记吞吐量的信访内容，包含请求、事实和理由。', 1, 1, 0, NULL, NULL, NULL, NULL,
    sha256(convert_to(:id, 'UTF8')), 'pingcheng.housing', false, false, false, NULL, NULL, true, NULL);
INSERT INTO intake.petitioners (case_id, ordinal, name, id_type, id_hash, id_number_sealed,
    phone_sealed, address_sealed, is_main, sex, age_band)
VALUES (:id, 0, '测试人', 'resident_id', sha256(('id:' || :n)::bytea),
    decode(repeat('a1', 58), 'hex'), decode(repeat('b2', 51), 'hex'),
    decode(repeat('c3', 79), 'hex'), true, 'male', '40-49');
WITH n AS (
    INSERT INTO intake.case_number_counters (organ_id, year, last_seq)
    VALUES ('pingcheng.bureau', 2026, 1)
    ON CONFLICT (organ_id, year) DO UPDATE SET last_seq = intake.case_number_counters.last_seq + 1
    RETURNING last_seq)
UPDATE intake.cases SET case_number = '140213-2026-' || lpad(n.last_seq::text, 6, '0')
  FROM n WHERE intake.cases.id = :id RETURNING n.last_seq;
INSERT INTO intake.outbox (event_id, stream, payload)
VALUES (gen_random_uuid(), 'petition.intake.v1', decode(repeat('ab', 420), 'hex'));
COMMIT;
