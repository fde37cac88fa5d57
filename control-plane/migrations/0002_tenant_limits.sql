-- A tenant's quota of CPU (thousandths of a CPU) and memory (bytes) over its running
-- applications, and its limits on applications and on versions per application. Tenants
-- made before get the defaults of a new one.
ALTER TABLE tenants ADD COLUMN max_cpu_milli BIGINT NOT NULL DEFAULT 64000;
ALTER TABLE tenants ADD COLUMN max_memory_bytes BIGINT NOT NULL DEFAULT 274877906944;
ALTER TABLE tenants ADD COLUMN max_applications BIGINT NOT NULL DEFAULT 100;
ALTER TABLE tenants ADD COLUMN max_versions BIGINT NOT NULL DEFAULT 1000;
