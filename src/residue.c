/*
 * src/residue.c
 *	  Residue on a pooled connection: what one request leaves behind for the
 *	  next request of another tenant.
 *
 * Temporary objects.  A request under tenant A can create temp tables,
 * views, sequences, types and functions in pg_temp.  Relation and type names
 * resolve in pg_temp before any other schema, so a later request under
 * tenant B on the same backend would resolve its own unqualified "orders" to
 * A's temp view, and A's code would capture B's rows.  We record, for every
 * object created in this backend's temp schemas, the context it was created
 * under (the effective tenant, or none), and refuse (55000, hint DISCARD
 * TEMP) any statement run under another context that resolves one of them.
 *
 * Why refuse the statement rather than the switch: the context changes by
 * set_tenant(), by a token, when a LOCAL context ends with its transaction,
 * and by SET ROLE to a member role; only the statement sees every one of
 * them.  A pool that never lets temp objects cross requests is not affected
 * at all, and one that does gets a clear error on the first statement that
 * would have met them.  The setting tenant_iso.discard_temp_on_switch (off
 * by default, because it drops objects a trusted pool may rely on) drops
 * every temp object when set_tenant(), set_tenant_token() or reset_tenant()
 * change the context.
 *
 * Objects a superuser creates outside any tenant context are trusted and not
 * recorded (the superuser is trusted; pgTAP keeps its state in such tables).
 * Entries are never removed when an object is dropped, because the drop may
 * roll back; they are pruned at the start of a later statement, once no
 * recorded object was dropped in the current transaction.
 *
 * Prepared transactions.  A session-level set_tenant() inside a transaction
 * survives PREPARE TRANSACTION whatever the prepared transaction's fate, so
 * PREPARE TRANSACTION is refused (0A000) when the transaction changed the
 * session-level context, like PostgreSQL refuses it for temp objects.
 *
 * Called from hooks.c, and after a context change through the callback it
 * registers with context.c (ti_context_register_callback); holds no hook
 * variable of its own.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/discard.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "guc.h"
#include "isolation.h"
#include "tenant_iso.h"

typedef struct TempKey
{
	Oid			classid;
	Oid			objid;
} TempKey;

typedef struct TempEntry
{
	TempKey		key;
	char		ctx[NAMEDATALEN];	/* "" = no tenant context */
} TempEntry;

static HTAB *temp_objects = NULL;
static char common_ctx[NAMEDATALEN];	/* ctx of every entry, unless mixed */
static bool mixed_ctx = false;
static bool need_prune = false;
static bool dropped_in_xact = false;

#define PRUNE_THRESHOLD 1024

static bool
temp_objects_recorded(void)
{
	return temp_objects != NULL && hash_get_num_entries(temp_objects) > 0;
}

/* The context key of the running statement: the effective tenant or "". */
static const char *
current_ctx(void)
{
	const char *t = ti_effective_tenant();

	return t ? t : "";
}

/*
 * The namespace of an object created by the current command.  The new
 * catalog row is not visible to the catalog snapshot yet, hence SnapshotSelf.
 */
static Oid
new_object_namespace(Oid classId, Oid objectId)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(classId, AccessShareLock);
	ScanKeyInit(&key, get_object_attnum_oid(classId), BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(objectId));
	scan = systable_beginscan(rel, get_object_oid_index(classId), true,
							  SnapshotSelf, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, get_object_attnum_namespace(classId),
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			nsp = DatumGetObjectId(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

static bool
tracked_class(Oid classId)
{
	return classId == RelationRelationId || classId == TypeRelationId ||
		classId == ProcedureRelationId || classId == OperatorRelationId ||
		classId == CollationRelationId;
}

static void
record_temp_object(Oid classId, Oid objectId)
{
	TempKey		key;
	TempEntry  *e;
	const char *ctx = current_ctx();

	if (temp_objects == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TempKey);
		ctl.entrysize = sizeof(TempEntry);
		ctl.hcxt = TopMemoryContext;
		temp_objects = hash_create("tenant_iso temp objects", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!temp_objects_recorded())
	{
		strlcpy(common_ctx, ctx, NAMEDATALEN);
		mixed_ctx = false;
	}
	else if (strcmp(common_ctx, ctx) != 0)
		mixed_ctx = true;

	key.classid = classId;
	key.objid = objectId;
	e = hash_search(temp_objects, &key, HASH_ENTER, NULL);
	strlcpy(e->ctx, ctx, NAMEDATALEN);
	if (hash_get_num_entries(temp_objects) > PRUNE_THRESHOLD)
		need_prune = true;
}

void
ti_residue_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						 int subId, void *arg)
{
	Oid			temp_nsp,
				toast_nsp,
				nsp;

	if (access == OAT_DROP)
	{
		TempKey		key;

		if (!temp_objects_recorded() || subId != 0)
			return;
		key.classid = classId;
		key.objid = objectId;
		if (hash_search(temp_objects, &key, HASH_FIND, NULL) != NULL)
		{
			need_prune = true;
			dropped_in_xact = true;
		}
		return;
	}
	if (access != OAT_POST_CREATE || subId != 0 || !tracked_class(classId))
		return;
	if (IsParallelWorker() || !IsTransactionState())
		return;
	GetTempNamespaceState(&temp_nsp, &toast_nsp);
	if (!OidIsValid(temp_nsp) || !ti_extension_present())
		return;
	/* a superuser outside any tenant context is trusted */
	if (!ti_in_tenant_context() && superuser())
		return;
	nsp = new_object_namespace(classId, objectId);
	if (OidIsValid(nsp) && (nsp == temp_nsp || nsp == toast_nsp))
		record_temp_object(classId, objectId);
}

static bool
object_exists(Oid classid, Oid objid)
{
	int			cacheid;

	if (classid == RelationRelationId)
		cacheid = RELOID;
	else if (classid == TypeRelationId)
		cacheid = TYPEOID;
	else if (classid == ProcedureRelationId)
		cacheid = PROCOID;
	else if (classid == OperatorRelationId)
		cacheid = OPEROID;
	else
		cacheid = COLLOID;
	return SearchSysCacheExists1(cacheid, ObjectIdGetDatum(objid));
}

/* Forget the entries of objects that no longer exist. */
static void
prune(void)
{
	HASH_SEQ_STATUS seq;
	TempEntry  *e;
	bool		first = true;

	need_prune = false;
	mixed_ctx = false;
	hash_seq_init(&seq, temp_objects);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (!object_exists(e->key.classid, e->key.objid))
		{
			hash_search(temp_objects, &e->key, HASH_REMOVE, NULL);
			continue;
		}
		if (first)
			strlcpy(common_ctx, e->ctx, NAMEDATALEN);
		else if (strcmp(common_ctx, e->ctx) != 0)
			mixed_ctx = true;
		first = false;
	}
}

/*
 * True if the statement may have to be checked: objects from some other
 * context than the current one are recorded.
 */
static bool
check_needed(const char **ctx)
{
#ifdef TENANT_ISO_MUTANT_NO_RESIDUE
	return false;
#endif
	if (!temp_objects_recorded() || IsParallelWorker() || !IsTransactionState())
		return false;
	if (need_prune && !dropped_in_xact)
	{
		prune();
		if (!temp_objects_recorded())
			return false;
	}
	*ctx = current_ctx();
	return mixed_ctx || strcmp(common_ctx, *ctx) != 0;
}

static void
check_object(Oid classid, Oid objid, const char *ctx)
{
	TempKey		key;
	TempEntry  *e;

	if (!OidIsValid(objid))
		return;
	key.classid = classid;
	key.objid = objid;
	e = hash_search(temp_objects, &key, HASH_FIND, NULL);
	if (e == NULL || strcmp(e->ctx, ctx) == 0)
		return;
	/* name no tenant: the creating context is not the caller's business */
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("statement uses a temporary object created under another tenant context"),
			 errdetail("Temporary objects left by an earlier request on this connection are not resolved under another tenant context."),
			 errhint("Run DISCARD TEMP (or DISCARD ALL) before serving another tenant on this connection, or set tenant_iso.discard_temp_on_switch.")));
}

static bool residue_walker(Node *node, void *context);

/* Utility statements resolve names when they run; check the ones we can. */
static void
check_utility(Node *stmt, const char *ctx)
{
	switch (nodeTag(stmt))
	{
		case T_CreateTableAsStmt:
			(void) residue_walker(((CreateTableAsStmt *) stmt)->query, (void *) ctx);
			break;
		case T_ExplainStmt:
			(void) residue_walker(((ExplainStmt *) stmt)->query, (void *) ctx);
			break;
		case T_DeclareCursorStmt:
			(void) residue_walker(((DeclareCursorStmt *) stmt)->query, (void *) ctx);
			break;
		case T_CopyStmt:
			{
				CopyStmt   *cs = (CopyStmt *) stmt;

				/* COPY (query) is analysed, and checked, on its own */
				if (cs->relation)
					check_object(RelationRelationId,
								 RangeVarGetRelid(cs->relation, NoLock, true), ctx);
				break;
			}
		default:
			break;
	}
}

static bool
residue_walker(Node *node, void *context)
{
	const char *ctx = (const char *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		if (q->utilityStmt)
		{
			check_utility(q->utilityStmt, ctx);
			return false;
		}
		return query_tree_walker(q, residue_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	}
	switch (nodeTag(node))
	{
		case T_RangeTblEntry:
			{
				RangeTblEntry *rte = (RangeTblEntry *) node;

				if (rte->rtekind == RTE_RELATION)
					check_object(RelationRelationId, rte->relid, ctx);
				return false;
			}
		case T_FuncExpr:
			check_object(ProcedureRelationId, ((FuncExpr *) node)->funcid, ctx);
			check_object(TypeRelationId, ((FuncExpr *) node)->funcresulttype, ctx);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			check_object(OperatorRelationId, ((OpExpr *) node)->opno, ctx);
			check_object(ProcedureRelationId, ((OpExpr *) node)->opfuncid, ctx);
			break;
		case T_ScalarArrayOpExpr:
			check_object(OperatorRelationId, ((ScalarArrayOpExpr *) node)->opno, ctx);
			break;
		case T_Aggref:
			check_object(ProcedureRelationId, ((Aggref *) node)->aggfnoid, ctx);
			break;
		case T_WindowFunc:
			check_object(ProcedureRelationId, ((WindowFunc *) node)->winfnoid, ctx);
			break;
		case T_Var:
			check_object(TypeRelationId, ((Var *) node)->vartype, ctx);
			break;
		case T_Const:
			{
				Const	   *c = (Const *) node;

				check_object(TypeRelationId, c->consttype, ctx);
				/* nextval('seq'), 'tab'::regclass: the value names the object */
				if (!c->constisnull && c->consttype == REGCLASSOID)
					check_object(RelationRelationId, DatumGetObjectId(c->constvalue), ctx);
				else if (!c->constisnull && (c->consttype == REGPROCOID ||
											 c->consttype == REGPROCEDUREOID))
					check_object(ProcedureRelationId, DatumGetObjectId(c->constvalue), ctx);
				else if (!c->constisnull && c->consttype == REGTYPEOID)
					check_object(TypeRelationId, DatumGetObjectId(c->constvalue), ctx);
				break;
			}
		case T_CoerceToDomain:
			check_object(TypeRelationId, ((CoerceToDomain *) node)->resulttype, ctx);
			break;
		case T_RelabelType:
			check_object(TypeRelationId, ((RelabelType *) node)->resulttype, ctx);
			break;
		case T_CoerceViaIO:
			check_object(TypeRelationId, ((CoerceViaIO *) node)->resulttype, ctx);
			break;
		case T_ArrayCoerceExpr:
			check_object(TypeRelationId, ((ArrayCoerceExpr *) node)->resulttype, ctx);
			break;
		default:
			break;
	}
	return expression_tree_walker(node, residue_walker, context);
}

/* After parse analysis of every statement (utility ones included). */
void
ti_residue_post_parse(Query *query)
{
	const char *ctx;

	if (query->commandType == CMD_UTILITY &&
		(IsA(query->utilityStmt, TransactionStmt) ||
		 IsA(query->utilityStmt, DiscardStmt)))
		return;
	if (!check_needed(&ctx))
		return;
	(void) residue_walker((Node *) query, (void *) ctx);
}

/* Before a utility statement runs (it may come from a cached plan). */
void
ti_residue_check_utility(Node *parsetree)
{
	const char *ctx;

	if (IsA(parsetree, CopyStmt) && check_needed(&ctx))
		check_utility(parsetree, ctx);
}

/*
 * Before a plan runs: a cached plan may have been made before the context
 * changed.  Every relation (views included) the plan depends on is in
 * relationOids.
 */
void
ti_residue_check_plan(PlannedStmt *plan)
{
	const char *ctx;
	ListCell   *lc;

	if (!check_needed(&ctx))
		return;
	foreach(lc, plan->relationOids)
		check_object(RelationRelationId, lfirst_oid(lc), ctx);
	foreach(lc, plan->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION)
			check_object(RelationRelationId, rte->relid, ctx);
	}
}

/*
 * Context callback (registered in ti_residue_init): after set_tenant(),
 * set_tenant_token() or reset_tenant() changed the context.
 */
static void
residue_context_switched(bool changed)
{
	Oid			temp_nsp,
				toast_nsp;

	if (!changed || !ti_discard_temp_on_switch)
		return;
	GetTempNamespaceState(&temp_nsp, &toast_nsp);
	if (OidIsValid(temp_nsp))
		ResetTempTableNamespace();
}

static void
residue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
#ifndef TENANT_ISO_MUTANT_NO_RESIDUE
			if (ti_context_changed_in_xact())
#else
			if (false)
#endif
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed the session's tenant context"),
						 errdetail("A session-level context change would outlive the prepared transaction, whether it is committed or rolled back."),
						 errhint("Change the context with set_tenant(..., true) (local to the transaction), or outside the prepared transaction.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			dropped_in_xact = false;
			ti_context_xact_end();
			break;
		default:
			break;
	}
}

void
ti_residue_init(void)
{
	RegisterXactCallback(residue_xact_callback, NULL);
	ti_context_register_callback(residue_context_switched);
}
