-- Quotas a plan sets (billing_plans' "quotas"): org-wide quotas that
-- billing keeps in line with the plan the org has, one per meter, marked
-- managed_by = 'plan'. Admins override them (quota_overrides) but do not
-- edit or delete them; NULL is a quota an admin made.
ALTER TABLE quotas ADD COLUMN managed_by TEXT CHECK (managed_by IS NULL OR managed_by = 'plan');
CREATE UNIQUE INDEX IF NOT EXISTS quotas_by_plan ON quotas (org_id, meter_key) WHERE managed_by = 'plan';
