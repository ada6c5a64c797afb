/*
 * src/catalog.h
 *	  The column positions of the extension's configuration tables that C
 *	  reads (heap_getattr, scan keys) or writes (heap_form_tuple) by
 *	  position, in the style of PostgreSQL's Anum_pg_class_relname.
 *
 * The tables are created by tenant_iso--0.1.0.sql and changed by
 * sql/upgrade/0.1.0--0.2.0/ (70_tokens.sql creates token_keys and
 * token_revocations; 90_digests.sql appends columns to tracked, which C
 * reads by name).  A column is only ever appended, never reordered, so the
 * positions below hold for every installed catalog version.
 *
 * The regression test test/sql/catalog_columns.sql pins this column order: it
 * lists attnum, attname and type of each table below, so that a change to
 * an install or upgrade script that moves a column fails it.  Change this
 * file and that test together.
 */
#ifndef TI_CATALOG_H
#define TI_CATALOG_H

/* the extension's schema (the extension is not relocatable) */
#define TI_SCHEMA "tenant_iso"

/* tenant_iso.tenants */
#define Anum_tenants_tenant_id 1
#define Anum_tenants_display_name 2
#define Anum_tenants_status 3

/* tenant_iso.members */
#define Anum_members_member 1
#define Anum_members_tenant_id 2

/* tenant_iso.switchers */
#define Anum_switchers_grantee 1

/* tenant_iso.protected */
#define Anum_protected_rel 1
#define Anum_protected_tenant_column 2

/* tenant_iso.data_keys; (tenant_id, version) is the primary key */
#define Anum_data_keys_tenant_id 1
#define Anum_data_keys_version 2
#define Anum_data_keys_state 3
#define Anum_data_keys_wrapped 4

/* tenant_iso.tracked (format and later columns are read by name) */
#define Anum_tracked_rel 1
#define Anum_tracked_relname 2

/* tenant_iso.digests: the digest triggers form whole rows */
#define Anum_digests_relname 1
#define Anum_digests_tenant_id 2
#define Anum_digests_bucket 3
#define Anum_digests_nrows 4
#define Anum_digests_lanes 5
#define Natts_digests 5

/* tenant_iso.history_tables: the history trigger reads it (history.c) */
#define Anum_history_tables_rel 1
#define Anum_history_tables_hist 2
#define Anum_history_tables_tenant_column 3
#define Anum_history_tables_key_columns 4

/* tenant_iso.token_keys */
#define Anum_token_keys_kid 1
#define Anum_token_keys_created_at 2
#define Anum_token_keys_retired_at 3
#define Anum_token_keys_accept_until 4

/* tenant_iso.token_revocations */
#define Anum_token_revocations_tenant_id 1
#define Anum_token_revocations_revoked_before 2

/* tenant_iso.tenants: limits.c lists it for tenant_limits */
#define Anum_tenants_tenant_id_col 1

/* tenant_iso.limits: limits.c caches it */
#define Anum_limits_tenant_id 1
#define Anum_limits_max_active_statements 2
#define Anum_limits_statement_timeout 3
#define Anum_limits_work_mem 4
#define Anum_limits_temp_file_limit 5
#define Anum_limits_max_statements_per_second 6
#define Anum_limits_updated_at 7

/* registry.c: the OID of one of the tables above, InvalidOid if absent */
extern Oid	ti_ext_relid(const char *relname);

#endif
