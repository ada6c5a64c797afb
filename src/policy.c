/*
 * src/policy.c
 *	  The row-security policies of protected tables, and the C functions
 *	  behind them (tenant_iso._enforced_tenant_as, tenant_iso._tenant_default).
 *
 * For every protected table the permissive and the restrictive hook each
 * return one policy, for all commands, USING and WITH CHECK:
 *		tenant_column = (SELECT tenant_iso._enforced_tenant_as('<type>', <typmod>)::<type>)
 * built from a Var, a schema-qualified operator and function, and an
 * uncorrelated scalar sublink, so that no search_path can change what it
 * means.  The planner makes the sublink an InitPlan: the context is
 * evaluated once per scan, at run time (never folded into a cached plan),
 * and its Param still serves as an index condition and for run-time
 * partition pruning.  (The two policies are equal, so the rewriter keeps
 * one copy.)  Because ours is also restrictive, user policies can only
 * narrow access.
 *
 * A tenant id matches only itself: _enforced_tenant_as raises 42501 unless
 * the id is the canonical text form of the column's type (so '042' never
 * reaches the integer 42, nor an upper-case uuid the lower-case one, nor a
 * long id its truncation), and a nondeterministic collation on the column
 * is replaced by "C" in the comparison.
 *
 * The hooks themselves are installed by hooks.c.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
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

/*
 * The right-hand side of the tenant qual: an uncorrelated scalar sublink
 *		(SELECT tenant_iso._enforced_tenant_as('<type>', <typmod>)::<type>)
 * which the planner turns into an InitPlan: the context is evaluated once
 * per scan (not once per row), and the result is a PARAM_EXEC Param, so
 * index conditions and run-time partition pruning still apply, and a
 * cached generic plan re-reads the context at every execution.
 *
 * When the extension's SQL objects predate 0.2.0 (the library was updated
 * but ALTER EXTENSION UPDATE not run yet) it falls back to the 0.1.0
 * function, tenant_iso._enforced_tenant().
 */
static Node *
build_context_rhs(Form_pg_attribute att, const char *column)
{
	Oid			argtypes[2] = {REGTYPEOID, INT4OID};
	Oid			fn;
	Node	   *rhs;
	ParseState *pstate;

	fn = LookupFuncName(list_make2(makeString("tenant_iso"), makeString("_enforced_tenant_as")),
						2, argtypes, true);
	if (OidIsValid(fn))
		rhs = (Node *) makeFuncExpr(fn, TEXTOID,
									list_make2(makeConst(REGTYPEOID, -1, InvalidOid, sizeof(Oid),
														 ObjectIdGetDatum(att->atttypid), false, true),
											   makeConst(INT4OID, -1, InvalidOid, sizeof(int32),
														 Int32GetDatum(att->atttypmod), false, true)),
									InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	else
	{
		fn = LookupFuncName(list_make2(makeString("tenant_iso"), makeString("_enforced_tenant")),
							0, NULL, false);
		rhs = (Node *) makeFuncExpr(fn, TEXTOID, NIL, InvalidOid, InvalidOid,
									COERCE_EXPLICIT_CALL);
	}

	pstate = make_parsestate(NULL);
	rhs = coerce_to_target_type(pstate, rhs, TEXTOID, att->atttypid, att->atttypmod,
								COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, -1);
	if (rhs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" has an unsupported type", column)));
	assign_expr_collations(pstate, rhs);
	free_parsestate(pstate);
	return rhs;
}

/* (SELECT rhs): the planner makes it an InitPlan, evaluated once per statement. */
static Node *
context_sublink(Node *rhs)
{
	Query	   *q;
	SubLink    *sub;

	q = makeNode(Query);
	q->commandType = CMD_SELECT;
	q->querySource = QSRC_ORIGINAL;
	q->canSetTag = true;
	q->jointree = makeFromExpr(NIL, NULL);
	q->targetList = list_make1(makeTargetEntry((Expr *) rhs, 1, pstrdup("tenant"), false));

	sub = makeNode(SubLink);
	sub->subLinkType = EXPR_SUBLINK;
	sub->subLinkId = 0;
	sub->testexpr = NULL;
	sub->operName = NIL;
	sub->subselect = (Node *) q;
	sub->location = -1;
	return (Node *) sub;
}

static Expr *build_tenant_qual_rhs(Relation rel, const char *column, bool const_rhs);

static Expr *
build_tenant_qual(Relation rel, const char *column)
{
	return build_tenant_qual_rhs(rel, column, false);
}

/* The same check with its right-hand side as (SELECT ...). */
static Expr *
with_context_sublink(Expr *check)
{
	Expr	   *qual = copyObject(check);

	if (IsA(qual, OpExpr) && list_length(((OpExpr *) qual)->args) == 2)
		lsecond(((OpExpr *) qual)->args) = context_sublink(lsecond(((OpExpr *) qual)->args));
	else
		elog(ERROR, "unexpected form of the tenant check");
	return qual;
}

/*
 * copy.c: "column = <the enforced tenant, as a constant>", for the rows of
 * one COPY (the context cannot change while it runs).  Raises 42501 when
 * there is no usable context.
 */
Expr *
ti_tenant_qual_const(Relation rel, const char *column)
{
	return build_tenant_qual_rhs(rel, column, true);
}

static Expr *
build_tenant_qual_rhs(Relation rel, const char *column, bool const_rhs)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute att = NULL;
	int			i;
	Var		   *var;
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
	if (const_rhs)
	{
		int16		typlen;
		bool		typbyval;

		get_typlenbyval(att->atttypid, &typlen, &typbyval);
		rhs = (Node *) makeConst(att->atttypid, att->atttypmod, att->attcollation, typlen,
								 ti_enforced_tenant_datum(att->atttypid, att->atttypmod),
								 false, typbyval);
	}
	else
		rhs = build_context_rhs(att, column);

	pstate = make_parsestate(NULL);
	op = make_op(pstate,
				 list_make2(makeString("pg_catalog"), makeString("=")),
				 (Node *) var, rhs, NULL, -1);
	assign_expr_collations(pstate, (Node *) op);
	free_parsestate(pstate);

	/*
	 * A nondeterministic collation (case- or accent-insensitive) would let
	 * two distinct ids compare equal: compare bytes instead.  protect()
	 * refuses such columns; this covers tables protected before it did, and
	 * columns altered since.  Deterministic collations are kept, so that
	 * indexes on the tenant column stay usable.
	 */
	if (IsA(op, OpExpr) && OidIsValid(((OpExpr *) op)->inputcollid) &&
		!get_collation_isdeterministic(((OpExpr *) op)->inputcollid))
		((OpExpr *) op)->inputcollid = C_COLLATION_OID;
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
	Expr	   *check;

	column = ti_protected_column(RelationGetRelid(rel));
	if (column == NULL)
		return NIL;

	/*
	 * The tenant check is the restrictive policy, which every other policy
	 * is ANDed with; the permissive one only has to exist (without any,
	 * row security admits nothing) and is "true".  (p OR true) AND tenant is
	 * tenant whatever other permissive policies p the table has, and one
	 * check instead of two halves the InitPlans of every statement.
	 *
	 * USING quals filter scans: the context is an InitPlan there, evaluated
	 * once.  WITH CHECK is evaluated once per written row, and a single-row
	 * write would pay more for setting up an InitPlan than for calling the
	 * (STABLE, cached) context function directly.
	 */
	if (ti_maintenance_worker && !permissive)
		return NIL;
	if (ti_maintenance_worker || permissive)
		qual = check = (Expr *) makeBoolConst(true, false);
	else
	{
		check = build_tenant_qual(rel, column);
		qual = with_context_sublink(check);
	}
	policy = palloc0(sizeof(RowSecurityPolicy));
	policy->policy_name = pstrdup(permissive ? "tenant_iso_permissive" : "tenant_iso_restrictive");
	policy->polcmd = '*';
	policy->roles = construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
	policy->qual = qual;
	policy->with_check_qual = (check == qual) ? copyObject(check) : check;
	policy->hassublinks = !ti_maintenance_worker && !permissive;
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

/*
 * tenant_iso._enforced_tenant_as(typ regtype, typmod int4) RETURNS text:
 * the enforced tenant, checked to be the canonical text form of the type
 * (with that typmod); the policies cast the result to the column's type.
 * Raises 42501 when there is no usable context or the id is not canonical:
 * the policy fails closed for such a tenant.
 */
PG_FUNCTION_INFO_V1(ti_enforced_tenant_as);
Datum
ti_enforced_tenant_as(PG_FUNCTION_ARGS)
{
	Oid			typid;
	int32		typmod;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("type must not be null")));
	typid = PG_GETARG_OID(0);
	typmod = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	/* every id is the canonical form of an unbounded text */
	if (typid == TEXTOID || (typid == VARCHAROID && typmod < 0))
		PG_RETURN_TEXT_P(cstring_to_text(ti_enforced_tenant_or_error()));
	(void) ti_enforced_tenant_datum(typid, typmod);
	PG_RETURN_TEXT_P(cstring_to_text(ti_enforced_tenant_or_error()));
}

/*
 * tenant_iso._tenant_default(tenant text, typ regtype, typmod int4)
 * RETURNS text: the default of a tenant column, called with
 * tenant_iso.current_tenant() (so that the default still names it, as the
 * 0.1.0 one did).  NULL outside a tenant context (a NOT NULL column then
 * refuses the row); the tenant when its id reads back identically as the
 * type with that typmod; otherwise an error, never a truncated or
 * re-spelled id that would file the row under another tenant.
 */
PG_FUNCTION_INFO_V1(ti_tenant_default);
Datum
ti_tenant_default(PG_FUNCTION_ARGS)
{
	char	   *id;
	Oid			typid,
				typinput,
				typoutput,
				typioparam;
	int32		typmod;
	bool		isvarlena;
	Datum		value;
	char	   *back;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("type must not be null")));
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	typid = PG_GETARG_OID(1);
	typmod = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);

	getTypeInputInfo(typid, &typinput, &typioparam);
	value = OidInputFunctionCall(typinput, id, typioparam, typmod);
	getTypeOutputInfo(typid, &typoutput, &isvarlena);
	back = OidOutputFunctionCall(typoutput, value);
	if (strcmp(back, id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant id \"%s\" is not the canonical form of type %s",
						id, format_type_with_typemod(typid, typmod)),
				 errdetail("The row would be stored under another spelling of the tenant id."),
				 errhint("Register the tenant under its canonical form, or widen the tenant column.")));
	PG_RETURN_TEXT_P(cstring_to_text(id));
}
