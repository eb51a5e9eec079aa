-- The written opinion and its service record, the extension request and the completion report.
ALTER TABLE assignments ADD COLUMN reply_outcome TEXT;
ALTER TABLE assignments ADD COLUMN reply_text TEXT;
ALTER TABLE assignments ADD COLUMN legal_basis TEXT;
ALTER TABLE assignments ADD COLUMN service_record TEXT;
ALTER TABLE assignments ADD COLUMN replied_at BIGINT;
ALTER TABLE assignments ADD COLUMN served_at BIGINT;
ALTER TABLE assignments ADD COLUMN extension_days BIGINT;
ALTER TABLE assignments ADD COLUMN extension_reason TEXT;
ALTER TABLE assignments ADD COLUMN completion_report TEXT;
ALTER TABLE assignments ADD COLUMN completion_reported_at BIGINT;
