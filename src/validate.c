/*
 * src/validate.c
 *	  Settings of the architecture validation (validate(), drift()).  The
 *	  checks themselves are SQL over the catalogs, in the install script.
 *
 * Elevated paths: none in C.  validate(), drift() and baseline_save() are
 * SECURITY DEFINER SQL functions (run as the extension owner) with
 * SET search_path = pg_catalog, pg_temp; the settings here are read by them
 * through current_setting(), with no name resolution of their own.
 * validate() reads what verify() recorded (tenant_iso.verify_runs); it does
 * not call verify(), whose own SPI pins search_path (digest.c).
 */
#include "postgres.h"

#include "utils/guc.h"

#include "tenant_iso.h"

static char *tenant_columns = NULL;
static char *key_max_age = NULL;
static char *verify_max_age = NULL;

void
ti_validate_init(void)
{
	DefineCustomStringVariable("tenant_iso.tenant_columns",
							   "Comma-separated column names that mark a table as holding tenant data.",
							   "validate() reports tables in user schemas with such a column that are not protected.",
							   &tenant_columns,
							   "tenant_id",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.key_max_age",
							   "Age (an interval) after which validate() reports a tenant data key; empty for none.",
							   NULL,
							   &key_max_age,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.verify_max_age",
							   "Age (an interval) after which validate() reports a tracked table that verify() has not checked.",
							   NULL,
							   &verify_max_age,
							   "7 days",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}
