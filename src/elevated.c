/*
 * src/elevated.c
 *	  The one helper every elevated path uses to stop the caller's name
 *	  resolution from reaching it.
 *
 * An elevated path (SetUserIdAndSecContext, SPI run from a SECURITY DEFINER
 * context, a background worker acting as a table's owner) must not resolve
 * a function, operator or type through a search_path the caller controls:
 * a shadow in a caller-writable schema would run with the elevated rights.
 * ti_pin_search_path() opens a GUC nest level and sets search_path to
 * "pg_catalog, pg_temp" in it; ti_unpin_search_path() pops it.  Call the
 * unpin on the normal path; on error, transaction (or subtransaction) abort
 * pops the nest level anyway, but a caller that catches the error with
 * PG_TRY and carries on must unpin in its catch path too.  The SQL of every
 * elevated path is schema-qualified as well (operators included), so the
 * pin is a second line, not the only one.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "elevated.h"

int
ti_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
ti_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
