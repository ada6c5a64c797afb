/*
 * src/policy.c
 *	  The row-security policies of protected tables.
 *
 * For every protected table the permissive and the restrictive hook each
 * return one policy, for all commands, USING and WITH CHECK:
 *		tenant_column = tenant_iso._enforced_tenant()::<column type>
 * built from a Var and a schema-qualified operator and function, so that
 * no search_path can change what it means.  The function is STABLE: it is
 * evaluated at run time (never folded into the plan).  Because ours is also
 * restrictive, user policies can only narrow access.
 *
 * The hooks themselves are installed by hooks.c.
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

static Expr *
build_tenant_qual(Relation rel, const char *column)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute att = NULL;
	int			i;
	Var		   *var;
	Oid			fn;
	Node	   *rhs;
	Expr	   *op;
	ParseState *pstate;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), column) == 0)
		{
			att = a;
			break;
		}
	}
	if (att == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tenant column \"%s\" of protected table \"%s\" does not exist",
						column, RelationGetRelationName(rel)),
				 errhint("Call tenant_iso.unprotect() and tenant_iso.protect() again.")));

	var = makeVar(1, att->attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
	fn = LookupFuncName(list_make2(makeString("tenant_iso"), makeString("_enforced_tenant")),
						0, NULL, false);
	rhs = (Node *) makeFuncExpr(fn, TEXTOID, NIL, InvalidOid, InvalidOid,
								COERCE_EXPLICIT_CALL);

	pstate = make_parsestate(NULL);
	rhs = coerce_to_target_type(pstate, rhs, TEXTOID, att->atttypid, att->atttypmod,
								COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, -1);
	if (rhs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" has an unsupported type", column)));
	op = make_op(pstate,
				 list_make2(makeString("pg_catalog"), makeString("=")),
				 (Node *) var, rhs, NULL, -1);
	assign_expr_collations(pstate, (Node *) op);
	free_parsestate(pstate);
	return op;
}

/*
 * Set only inside the reencrypt() background worker, which runs nothing but
 * its own statements as the table's owner: its policies admit every tenant
 * (the owner could disable row security outside a tenant context anyway).
 * Not reachable from SQL.
 */
bool		ti_maintenance_worker = false;

List *
ti_tenant_policies(CmdType cmdtype, Relation rel, bool permissive)
{
	const char *column;
	RowSecurityPolicy *policy;
	Datum		role = ObjectIdGetDatum(ACL_ID_PUBLIC);
	Expr	   *qual;

	column = ti_protected_column(RelationGetRelid(rel));
	if (column == NULL)
		return NIL;

	if (ti_maintenance_worker)
	{
		if (!permissive)
			return NIL;
		qual = (Expr *) makeBoolConst(true, false);
	}
	else
		qual = build_tenant_qual(rel, column);
	policy = palloc0(sizeof(RowSecurityPolicy));
	policy->policy_name = pstrdup(permissive ? "tenant_iso_permissive" : "tenant_iso_restrictive");
	policy->polcmd = '*';
	policy->roles = construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
	policy->qual = qual;
	policy->with_check_qual = copyObject(qual);
	policy->hassublinks = false;
	return list_make1(policy);
}

Datum
ti_enforced_tenant_datum(Oid typid, int32 typmod)
{
	const char *id = ti_enforced_tenant_or_error();
	Oid			typinput,
				typoutput,
				typioparam;
	bool		isvarlena;
	Datum		value;
	char	   *back;

	getTypeInputInfo(typid, &typinput, &typioparam);
	value = OidInputFunctionCall(typinput, (char *) id, typioparam, typmod);
	getTypeOutputInfo(typid, &typoutput, &isvarlena);
	back = OidOutputFunctionCall(typoutput, value);
	if (strcmp(back, id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tenant id \"%s\" is not the canonical form of type %s",
						id, format_type_with_typemod(typid, typmod)),
				 errdetail("Another spelling of the same value would name another tenant's rows."),
				 errhint("Register the tenant under its canonical form (for example 42, not 042).")));
	pfree(back);
	return value;
}
