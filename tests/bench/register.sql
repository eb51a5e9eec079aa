-- One intake registration as pgbench runs it, statement for statement what IntakeStore does
-- for a batch of one (its registrar writes one when it is idle): the repeat lookup, then in one
-- transaction the case, its petitioner and first step, the gapless draw, the case's number,
-- and the outbox row.
\set n random(1, 2000000000)
SELECT gen_random_uuid()::text AS id, upper(substr(md5(random()::text), 1, 12)) AS qc,
       (extract(epoch FROM now()) * 1000000)::bigint AS now_us,
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
    open_below_case_number, status, status_at, status_event, repeat_of_open)
VALUES (:id, :qc, 'online', 'pingcheng.bureau', :now_us::bigint - 60000000, :now_us,
    'load@pingcheng.bureau', '01.01', 'grievance', NULL, '140213001', '负载测试信访件',
    '用于测量登记吞吐量的信访内容，包含请求、事实和理由。', 1, 1, 0, NULL, NULL, NULL, NULL,
    sha256(convert_to(:id, 'UTF8')), 'pingcheng.housing', 0, 0, 0, NULL, NULL, 1, NULL,
    'registered', :now_us, '', 0);
INSERT INTO intake.petitioners (case_id, ordinal, name, id_type, id_hash, id_number_sealed,
    phone_sealed, address_sealed, is_main, sex, age_band)
VALUES (:id, 0, '测试人', 'resident_id', sha256(('id:' || :n)::bytea),
    decode(repeat('a1', 58), 'hex'), decode(repeat('b2', 51), 'hex'),
    decode(repeat('c3', 79), 'hex'), 1, 'male', '40-49');
INSERT INTO intake.case_steps (case_id, event_id, at, kind, organ, note, public_note)
VALUES (:id, gen_random_uuid()::text, :now_us, 'registered', 'pingcheng.bureau',
    'registered by load@pingcheng.bureau', 'registered');
INSERT INTO intake.case_number_counters (region, year, last_seq) VALUES ('140213', 2026, 1)
    ON CONFLICT (region, year) DO UPDATE
      SET last_seq = intake.case_number_counters.last_seq + 1
    RETURNING last_seq \gset
UPDATE intake.cases SET case_number = CASE id WHEN :id
    THEN '140213-2026-' || lpad(:last_seq, 6, '0') END WHERE id IN (:id);
INSERT INTO intake.outbox (event_id, stream, payload, created_at)
VALUES (gen_random_uuid()::text, 'petition.intake.v1', decode(repeat('ab', 420), 'hex'), :now_us);
COMMIT;
