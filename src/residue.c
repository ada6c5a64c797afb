/*
 * src/residue.c
 *	  Residue on a pooled connection: what one request leaves behind for the
 *	  next request of another tenant (temporary objects, a session-level
 *	  context change inside a prepared transaction).
 *
 * Called from hooks.c; holds no hook state of its own.
 */
#include "postgres.h"

#include "isolation.h"
#include "tenant_iso.h"

void
ti_residue_init(void)
{
}

/* Before every statement (utility: the parse tree; planned: NULL). */
void
ti_residue_check_statement(Node *utility_or_null)
{
}

void
ti_residue_after_utility(Node *parsetree)
{
}

void
ti_residue_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						 int subId, void *arg)
{
}
