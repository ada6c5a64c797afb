-- One behaviour: with no tenant context, every read and write of a protected
-- table fails ("no tenant context", 42501); a member reads and writes its
-- own tenant's rows only.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
SELECT tenant_iso.create_tenant('rg_a') IS NOT NULL AS a, tenant_iso.create_tenant('rg_b') IS NOT NULL AS b;
CREATE ROLE rg_pool;
CREATE ROLE rg_member_a;
SELECT tenant_iso.add_member('rg_member_a', 'rg_a');
CREATE TABLE public.rg_notes (tenant_id text NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
INSERT INTO public.rg_notes VALUES ('rg_a', 1, 'a one'), ('rg_b', 1, 'b one');
SELECT tenant_iso.protect('public.rg_notes');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.rg_notes TO rg_pool, rg_member_a;

-- no context: nothing to read, nothing written
SET ROLE rg_pool;
SELECT count(*) AS rows_without_context FROM public.rg_notes;
INSERT INTO public.rg_notes VALUES ('rg_a', 2, 'no context');
UPDATE public.rg_notes SET body = 'x';
DELETE FROM public.rg_notes;
RESET ROLE;

-- a member: its own rows, and writes into its own tenant only
SET ROLE rg_member_a;
SELECT tenant_id, id, body FROM public.rg_notes ORDER BY 1, 2;
INSERT INTO public.rg_notes VALUES ('rg_b', 2, 'into another tenant');
INSERT INTO public.rg_notes (id, body) VALUES (3, 'default tenant');
UPDATE public.rg_notes SET tenant_id = 'rg_b' WHERE id = 3;
RESET ROLE;
SELECT tenant_id, id, body FROM public.rg_notes ORDER BY 1, 2;

DROP TABLE public.rg_notes;
DROP ROLE rg_pool;
SELECT tenant_iso.remove_member('rg_member_a');
DROP ROLE rg_member_a;
DROP EXTENSION tenant_iso;
