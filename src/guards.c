/*
 * src/guards.c
 *	  Utility guards: the whole-table operations that RLS leaves open
 *	  (TRUNCATE, DISABLE ROW LEVEL SECURITY, DDL on protected tables, ...),
 *	  refused while the session is in a tenant context; also LOCK TABLE
 *	  stronger than ROW EXCLUSIVE on a protected table (it would block every
 *	  other tenant), ALTER ROLE/DATABASE ... SET/RESET (a pool role's
 *	  settings apply to every tenant's sessions), foreign keys that
 *	  reference a protected table, and EXPLAIN ANALYZE (its row counts).
 *	  tenant_iso._assert_no_tenant_context() lets the SQL functions make the
 *	  same refusal.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "parser/parse_node.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "keys.h"
#include "tenant_iso.h"

#include "isolation.h"

Oid
ti_rangevar_oid(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

bool
ti_is_protected(Oid relid)
{
	return OidIsValid(relid) && ti_protected_column(relid) != NULL;
}

/* protected, or has a protected descendant */
bool
ti_tree_is_protected(Oid relid)
{
	List	   *all;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return false;
	if (ti_is_protected(relid))
		return true;
	if (!has_subclass(relid))
		return false;
	all = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, all)
	{
		if (ti_is_protected(lfirst_oid(lc)))
			return true;
	}
	return false;
}

void
ti_refuse(const char *what, Oid relid)
{
	char	   *name = OidIsValid(relid) ? get_rel_name(relid) : NULL;

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is not allowed in a tenant context", what),
			 name ? errdetail("\"%s\" is protected by tenant_iso; this would reach other tenants' rows.", name) : 0,
			 errhint("Run it as an administrator that is not a tenant member, outside any tenant context.")));
}

static void
guard_fk_constraint(Node *n)
{
	Constraint *c;

	if (n == NULL || !IsA(n, Constraint))
		return;
	c = (Constraint *) n;
	if (c->contype == CONSTR_FOREIGN && ti_is_protected(ti_rangevar_oid(c->pktable)))
		ti_refuse("creating a foreign key that references a protected table",
			   ti_rangevar_oid(c->pktable));
}

static void
guard_alter_table(AlterTableStmt *stmt)
{
	Oid			relid = ti_rangevar_oid(stmt->relation);
	const char *column = OidIsValid(relid) ? ti_protected_column(relid) : NULL;
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		if (ti_at_adds_constraint(cmd->subtype))
			guard_fk_constraint(cmd->def);

		switch (cmd->subtype)
		{
			case AT_DisableRowSecurity:
				if (column)
					ti_refuse("ALTER TABLE ... DISABLE ROW LEVEL SECURITY", relid);
				break;
			case AT_NoForceRowSecurity:
				if (column)
					ti_refuse("ALTER TABLE ... NO FORCE ROW LEVEL SECURITY", relid);
				break;
			case AT_DropColumn:
				if (column && cmd->name && strcmp(cmd->name, column) == 0)
					ti_refuse("dropping the tenant column", relid);
				break;
			case AT_AlterColumnType:
				if (column && cmd->name && strcmp(cmd->name, column) == 0)
					ti_refuse("changing the type of the tenant column", relid);
				break;
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				if (column)
					ti_refuse("detaching a partition of a protected table", relid);
				break;
			case AT_AttachPartition:
				if (column)
					ti_refuse("attaching a partition to a protected table", relid);
				break;
			case AT_AddInherit:
				if (ti_is_protected(ti_rangevar_oid((RangeVar *) cmd->def)))
					ti_refuse("adding a table to a protected parent",
						   ti_rangevar_oid((RangeVar *) cmd->def));
				break;
			case AT_DropInherit:
				if (ti_is_protected(ti_rangevar_oid((RangeVar *) cmd->def)))
					ti_refuse("removing a table from a protected parent",
						   ti_rangevar_oid((RangeVar *) cmd->def));
				break;
			case AT_DisableTrig:
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				if (column)
					ti_refuse("disabling triggers on a protected table", relid);
				break;
			default:
				break;
		}
	}
}

static void
guard_create_table(CreateStmt *stmt)
{
	ListCell   *lc,
			   *lc2;

	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);

		if (IsA(elt, ColumnDef))
		{
			foreach(lc2, ((ColumnDef *) elt)->constraints)
				guard_fk_constraint(lfirst(lc2));
		}
		else
			guard_fk_constraint(elt);
	}
	foreach(lc, stmt->constraints)
		guard_fk_constraint(lfirst(lc));
}

/* Only ENABLE/FORCE ROW LEVEL SECURITY and column defaults. */
static bool
alter_is_protective(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		if (cmd->subtype != AT_EnableRowSecurity &&
			cmd->subtype != AT_ForceRowSecurity &&
			cmd->subtype != AT_ColumnDefault)
			return false;
	}
	return true;
}

static bool
explain_has_analyze(ExplainStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
			return true;
	}
	return false;
}

/*
 * Refuse whole-table operations on protected tables while in a tenant
 * context (which every member role's session is).
 */
void
ti_guard_whole_table(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) parsetree)->relations)
			{
				Oid			relid = ti_rangevar_oid((RangeVar *) lfirst(lc));

				if (ti_tree_is_protected(relid))
					ti_refuse("TRUNCATE of a protected table", relid);
			}
			break;
		case T_AlterTableStmt:
			{
				AlterTableStmt *at = (AlterTableStmt *) parsetree;
				Oid			relid = ti_rangevar_oid(at->relation);

				guard_alter_table(at);
				/*
				 * Anything else that alters a protected table (constraints
				 * validated over every row, column rewrites with USING,
				 * generated columns, owner changes) would run over every
				 * tenant's rows.  Only what protect() itself does is left.
				 */
				if (ti_tree_is_protected(relid) && !alter_is_protective(at))
					ti_refuse("ALTER TABLE on a protected table", relid);
				break;
			}
		case T_IndexStmt:
			{
				Oid			relid = ti_rangevar_oid(((IndexStmt *) parsetree)->relation);

				if (ti_tree_is_protected(relid))
					ti_refuse("creating an index on a protected table", relid);
				break;
			}
		case T_CreateStatsStmt:
			foreach(lc, ((CreateStatsStmt *) parsetree)->relations)
			{
				Node	   *n = lfirst(lc);
				Oid			relid = IsA(n, RangeVar) ? ti_rangevar_oid((RangeVar *) n) : InvalidOid;

				if (ti_tree_is_protected(relid))
					ti_refuse("creating statistics on a protected table", relid);
			}
			break;
		case T_LockStmt:
			{
				LockStmt   *ls = (LockStmt *) parsetree;

				if (ls->mode <= RowExclusiveLock)
					break;
				foreach(lc, ls->relations)
				{
					Oid			relid = ti_rangevar_oid((RangeVar *) lfirst(lc));

					if (ti_tree_is_protected(relid))
						ti_refuse("LOCK TABLE in a mode stronger than ROW EXCLUSIVE", relid);
				}
				break;
			}
		case T_AlterRoleSetStmt:
			ti_refuse("ALTER ROLE ... SET/RESET", InvalidOid);
			break;
		case T_AlterDatabaseSetStmt:
			ti_refuse("ALTER DATABASE ... SET/RESET", InvalidOid);
			break;
		case T_DropOwnedStmt:
			ti_refuse("DROP OWNED", InvalidOid);
			break;
		case T_ReassignOwnedStmt:
			ti_refuse("REASSIGN OWNED", InvalidOid);
			break;
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) parsetree;

				if (rs->renameType == OBJECT_COLUMN)
				{
					Oid			relid = ti_rangevar_oid(rs->relation);
					const char *column = OidIsValid(relid) ? ti_protected_column(relid) : NULL;

					if (column && rs->subname && strcmp(rs->subname, column) == 0)
						ti_refuse("renaming the tenant column", relid);
				}
				break;
			}
		case T_CreateTrigStmt:
			{
				Oid			relid = ti_rangevar_oid(((CreateTrigStmt *) parsetree)->relation);

				if (ti_tree_is_protected(relid))
					ti_refuse("creating a trigger on a protected table", relid);
				break;
			}
		case T_RuleStmt:
			{
				Oid			relid = ti_rangevar_oid(((RuleStmt *) parsetree)->relation);

				if (ti_tree_is_protected(relid))
					ti_refuse("creating a rule on a protected table", relid);
				break;
			}
		case T_CreateStmt:
			guard_create_table((CreateStmt *) parsetree);
			break;
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) parsetree;

				if (ds->removeType != OBJECT_TABLE)
					break;
				foreach(lc, ds->objects)
				{
					RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
					Oid			relid = ti_rangevar_oid(rv);

					if (ti_tree_is_protected(relid))
						ti_refuse("DROP TABLE of a protected table", relid);
				}
				break;
			}
		case T_ExplainStmt:
			if (explain_has_analyze((ExplainStmt *) parsetree))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("EXPLAIN ANALYZE is not allowed in a tenant context"),
						 errdetail("Its row counts would reveal other tenants' rows."),
						 errhint("Use plain EXPLAIN, or run EXPLAIN ANALYZE outside any tenant context.")));
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(ti_assert_no_tenant_context);
Datum
ti_assert_no_tenant_context(PG_FUNCTION_ARGS)
{
	if (ti_in_tenant_context())
		ti_refuse(PG_ARGISNULL(0) ? "this operation" : text_to_cstring(PG_GETARG_TEXT_PP(0)),
			   PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1));
	PG_RETURN_VOID();
}
