/*
 * src/history.c
 *	  Row history for self-service restore: the trigger that records every
 *	  change of a history-enabled table in its history table, and the
 *	  background worker that purges history older than its retention.
 *
 * The trigger (tenant_iso._history_trigger, AFTER INSERT OR UPDATE OR
 * DELETE FOR EACH ROW on the table, cloned by PostgreSQL to its partitions)
 * appends one row per change to tenant_iso_history."<schema>.<table>":
 *	  'I'  an insert: the tenant and primary key columns, valid_from = now;
 *	  'U'  the old image of an update, valid_to = now;
 *	  'D'  the old image of a delete, valid_to = now.
 * An update that changes the primary key or the tenant column is recorded
 * as a 'D' of the old key and an 'I' of the new one.  An image's
 * valid_from (when it became current: the key's previous event) is left
 * NULL here and derived by the reader, history(): looking it up for every
 * write would read a whole index page of a busy key's events each time.
 * Times are clock_timestamp() at the change.  ('T', the images a
 * TRUNCATE removes, is written by the SQL trigger _history_truncate.)
 *
 * The history row is written straight into the heap and its indexes, as
 * the digest trigger writes its deltas: no SQL runs, so no name is
 * resolved, and the table's row security and grants (none) do not apply to
 * the extension's own writes.  The per-relation layout (which column of
 * the table feeds which history column) is cached and dropped on any
 * relcache invalidation.
 *
 * Elevated paths: the purge worker runs "SELECT tenant_iso.purge_history()"
 * through SPI as the bootstrap superuser, with search_path pinned to
 * pg_catalog, pg_temp for the duration (a GUC nest level).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/partition.h"
#include "catalog/pg_namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/xid8.h"

#include "catalog.h"
#include "compat.h"
#include "guc.h"
#include "tenant_iso.h"

#define HIST_MAX_KEYS INDEX_MAX_KEYS

typedef struct HistLayout
{
	Oid			relid;			/* hash key: the trigger's relation */
	Oid			hist;			/* the history table */
	int			hist_natts;
	AttrNumber *src;			/* per history column: attnum in relid, or 0 */
	AttrNumber	att_valid_from;
	AttrNumber	att_valid_to;
	AttrNumber	att_op;
	AttrNumber	att_xid;
	int			nkeys;			/* tenant column + primary key columns */
	AttrNumber	key_src[HIST_MAX_KEYS];	/* in relid */
	AttrNumber	key_hist[HIST_MAX_KEYS];	/* in hist */
} HistLayout;

static MemoryContext layout_cxt = NULL;
static HTAB *layout_cache = NULL;
static bool layout_stale = false;
static bool layout_cb_registered = false;

static void
layout_cache_cb(Datum arg, Oid relid)
{
	layout_stale = true;
}

/* The history_tables row of relid or of its nearest registered ancestor. */
static bool
find_registration(Oid relid, Oid *hist, char **tenant_column, ArrayType **keys)
{
	Oid			reg = ti_ext_relid("history_tables");
	List	   *cands = list_make1_oid(relid);
	bool		found = false;
	ListCell   *lc;

	if (!OidIsValid(reg))
		return false;
	if (get_rel_relispartition(relid))
		cands = list_concat(cands, get_partition_ancestors(relid));

	foreach(lc, cands)
	{
		Oid			cand = lfirst_oid(lc);
		Relation	r = table_open(reg, AccessShareLock);
		TableScanDesc scan;
		HeapTuple	tup;
		ScanKeyData key;

		ScanKeyInit(&key, Anum_history_tables_rel, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(cand));
		scan = table_beginscan_catalog(r, 1, &key);
		if ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			bool		isnull;
			Datum		d;

			*hist = DatumGetObjectId(heap_getattr(tup, Anum_history_tables_hist,
												  RelationGetDescr(r), &isnull));
			d = heap_getattr(tup, Anum_history_tables_tenant_column, RelationGetDescr(r), &isnull);
			*tenant_column = pstrdup(NameStr(*DatumGetName(d)));
			d = heap_getattr(tup, Anum_history_tables_key_columns, RelationGetDescr(r), &isnull);
			*keys = DatumGetArrayTypePCopy(d);
			found = true;
		}
		table_endscan(scan);
		table_close(r, AccessShareLock);
		if (found)
			break;
	}
	return found;
}

static AttrNumber
attnum_of(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return a->attnum;
	}
	return InvalidAttrNumber;
}

static HistLayout *
build_layout(Relation rel, HistLayout *e)
{
	Oid			hist;
	char	   *tenant_column;
	ArrayType  *keys;
	Datum	   *kd;
	int			nk;
	Relation	h;
	TupleDesc	hd;

	if (!find_registration(RelationGetRelid(rel), &hist, &tenant_column, &keys))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has a history trigger but no history table",
						RelationGetRelationName(rel)),
				 errhint("Call tenant_iso.disable_history() or tenant_iso.enable_history() on the table.")));

	h = table_open(hist, AccessShareLock);
	hd = RelationGetDescr(h);
	e->hist = hist;
	e->hist_natts = hd->natts;
	e->src = MemoryContextAllocZero(layout_cxt, sizeof(AttrNumber) * hd->natts);
	e->att_valid_from = e->att_valid_to = e->att_op = e->att_xid = InvalidAttrNumber;
	for (int i = 0; i < hd->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(hd, i);
		const char *n = NameStr(a->attname);

		if (a->attisdropped)
			continue;
		if (strcmp(n, "valid_from") == 0)
			e->att_valid_from = a->attnum;
		else if (strcmp(n, "valid_to") == 0)
			e->att_valid_to = a->attnum;
		else if (strcmp(n, "op") == 0)
			e->att_op = a->attnum;
		else if (strcmp(n, "xid") == 0)
			e->att_xid = a->attnum;
		else
		{
			AttrNumber	s = attnum_of(rel, n);

			/*
			 * A value is copied only into a column of the same type (a
			 * domain's base type: history stores no domain): the DDL event
			 * trigger keeps the types in step, and a write of the table
			 * never fails for its history's sake.
			 */
			if (s != InvalidAttrNumber &&
				getBaseType(TupleDescAttr(RelationGetDescr(rel), s - 1)->atttypid) == a->atttypid)
				e->src[i] = s;
		}
	}
	if (e->att_valid_from == 0 || e->att_valid_to == 0 || e->att_op == 0 || e->att_xid == 0)
		elog(ERROR, "history table of \"%s\" lacks its bookkeeping columns",
			 RelationGetRelationName(rel));

	deconstruct_array(keys, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &kd, NULL, &nk);
	if (nk + 1 > HIST_MAX_KEYS)
		elog(ERROR, "too many key columns");
	e->nkeys = nk + 1;
	for (int i = 0; i < e->nkeys; i++)
	{
		const char *n = i == 0 ? tenant_column : NameStr(*DatumGetName(kd[i - 1]));

		e->key_src[i] = attnum_of(rel, n);
		e->key_hist[i] = attnum_of(h, n);
		if (e->key_src[i] == InvalidAttrNumber || e->key_hist[i] == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("key column \"%s\" of the history of \"%s\" is missing",
							n, RelationGetRelationName(rel))));
	}

	table_close(h, AccessShareLock);
	return e;
}

static HistLayout *
layout_for(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	HistLayout *e;
	bool		found;

	if (!layout_cb_registered)
	{
		CacheRegisterRelcacheCallback(layout_cache_cb, (Datum) 0);
		layout_cb_registered = true;
	}
	if (layout_cxt == NULL)
		layout_cxt = AllocSetContextCreate(CacheMemoryContext, "tenant_iso history layouts",
										   ALLOCSET_SMALL_SIZES);
	if (layout_stale)
	{
		MemoryContextReset(layout_cxt);
		layout_cache = NULL;
		layout_stale = false;
	}
	if (layout_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(HistLayout);
		ctl.hcxt = layout_cxt;
		layout_cache = hash_create("tenant_iso history layouts", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(layout_cache, &relid, HASH_FIND, NULL);
	if (e != NULL)
		return e;

	/* build it in a scratch entry, so that an error leaves no half entry */
	{
		HistLayout	tmp;
		HistLayout *ne;

		memset(&tmp, 0, sizeof(tmp));
		tmp.relid = relid;
		build_layout(rel, &tmp);
		if (layout_stale)		/* invalidated while building: do not keep */
		{
			ne = MemoryContextAlloc(CurrentMemoryContext, sizeof(HistLayout));
			memcpy(ne, &tmp, sizeof(HistLayout));
			return ne;
		}
		ne = hash_search(layout_cache, &relid, HASH_ENTER, &found);
		memcpy(ne, &tmp, sizeof(HistLayout));
		return ne;
	}
}

/* Insert one history row: heap, then every index of the history table. */
static void
insert_history(Relation h, HeapTuple tup)
{
	List	   *indexes = RelationGetIndexList(h);
	ListCell   *lc;
	TupleTableSlot *slot = NULL;
	EState	   *estate = NULL;

	simple_heap_insert(h, tup);
	foreach(lc, indexes)
	{
		Relation	ir = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *ii = BuildIndexInfo(ir);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		if (slot == NULL)
		{
			slot = MakeSingleTupleTableSlot(RelationGetDescr(h), &TTSOpsHeapTuple);
			ExecStoreHeapTuple(tup, slot, false);
		}
		if ((ii->ii_Expressions != NIL || ii->ii_Predicate != NIL) && estate == NULL)
		{
			estate = CreateExecutorState();
			GetPerTupleExprContext(estate)->ecxt_scantuple = slot;
		}
		if (ii->ii_Predicate != NIL)
		{
			ExprState  *pred = ExecPrepareQual(ii->ii_Predicate, estate);

			if (!ExecQual(pred, GetPerTupleExprContext(estate)))
			{
				index_close(ir, RowExclusiveLock);
				continue;
			}
		}
		FormIndexDatum(ii, slot, estate, values, isnull);
		index_insert(ir, values, isnull, &tup->t_self, h,
					 ir->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, ii);
		index_close(ir, RowExclusiveLock);
	}
	if (estate)
		FreeExecutorState(estate);
	if (slot)
		ExecDropSingleTupleTableSlot(slot);
	list_free(indexes);
}

static void
record(HistLayout *L, Relation rel, Relation h, TupleTableSlot *slot, char op,
	   TimestampTz now, Datum xid)
{
	TupleDesc	hd = RelationGetDescr(h);
	Datum	   *values = palloc0(sizeof(Datum) * hd->natts);
	bool	   *nulls = palloc(sizeof(bool) * hd->natts);
	HeapTuple	tup;

	slot_getallattrs(slot);
	for (int i = 0; i < hd->natts; i++)
	{
		AttrNumber	s = L->src[i];
		bool		is_key = false;

		nulls[i] = true;
		if (s == 0)
			continue;
		for (int k = 0; k < L->nkeys; k++)
			if (L->key_hist[k] == i + 1)
				is_key = true;
		if (op == 'I' && !is_key)
			continue;			/* an insert marker holds the key only */
		if (slot->tts_isnull[s - 1])
			continue;
		values[i] = slot->tts_values[s - 1];
		nulls[i] = false;
	}
	values[L->att_op - 1] = CharGetDatum(op);
	nulls[L->att_op - 1] = false;
	values[L->att_xid - 1] = xid;
	nulls[L->att_xid - 1] = false;
	if (op == 'I')
	{
		values[L->att_valid_from - 1] = TimestampTzGetDatum(now);
		nulls[L->att_valid_from - 1] = false;
	}
	else
	{
		/* an image's valid_from is derived when read (see the header) */
		values[L->att_valid_to - 1] = TimestampTzGetDatum(now);
		nulls[L->att_valid_to - 1] = false;
	}
	tup = heap_form_tuple(hd, values, nulls);
	insert_history(h, tup);
	heap_freetuple(tup);
	pfree(values);
	pfree(nulls);
}

static bool
key_changed(HistLayout *L, Relation rel, TupleTableSlot *o, TupleTableSlot *n)
{
	TupleDesc	d = RelationGetDescr(rel);

	slot_getallattrs(o);
	slot_getallattrs(n);
	for (int k = 0; k < L->nkeys; k++)
	{
		int			a = L->key_src[k] - 1;
		Form_pg_attribute att = TupleDescAttr(d, a);

		if (o->tts_isnull[a] != n->tts_isnull[a])
			return true;
		if (!o->tts_isnull[a] &&
			!datumIsEqual(o->tts_values[a], n->tts_values[a], att->attbyval, att->attlen))
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(ti_history_trigger);
Datum
ti_history_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	Relation	h;
	HistLayout *L;
	TimestampTz now;
	Datum		xid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tenant_iso._history_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tenant_iso._history_trigger() must be an AFTER ... FOR EACH ROW trigger")));

	rel = td->tg_relation;
	L = layout_for(rel);
	h = table_open(L->hist, RowExclusiveLock);
	now = GetCurrentTimestamp();
	xid = FullTransactionIdGetDatum(GetTopFullTransactionId());

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		record(L, rel, h, td->tg_trigslot, 'I', now, xid);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		record(L, rel, h, td->tg_trigslot, 'D', now, xid);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		if (key_changed(L, rel, td->tg_trigslot, td->tg_newslot))
		{
			record(L, rel, h, td->tg_trigslot, 'D', now, xid);
			record(L, rel, h, td->tg_newslot, 'I', now, xid);
		}
		else
			record(L, rel, h, td->tg_trigslot, 'U', now, xid);
	}
	table_close(h, RowExclusiveLock);
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * The purge worker: one per database listed in
 * tenant_iso.history_purge_databases, every history_purge_interval.
 * --------------------------------------------------------------------- */

PGDLLEXPORT void ti_history_purge_main(Datum arg);

static int
purge_interval_ms(void)
{
	int64		us;

	if (ti_history_purge_interval == NULL ||
		!ti_parse_interval_usecs(ti_history_purge_interval, &us) || us <= 0)
		return 0;
	if (us / 1000 > INT_MAX)
		return INT_MAX;
	return (int) Max(us / 1000, 1000);
}

static void
purge_once(void)
{
	int			nest;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	pgstat_report_activity(STATE_RUNNING, "tenant_iso: purge_history()");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_extension e "
					"WHERE e.extname OPERATOR(pg_catalog.=) 'tenant_iso' "
					"AND e.extversion OPERATOR(pg_catalog.<>) '0.1.0'", true, 0) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull));

		if (n > 0)
			SPI_execute("SELECT tenant_iso.purge_history()", false, 0);
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
ti_history_purge_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);

	for (;;)
	{
		volatile int ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		ms = purge_interval_ms();
		if (ms > 0)
		{
			PG_TRY();
			{
				purge_once();
			}
			PG_CATCH();
			{
				EmitErrorReport();
				AbortCurrentTransaction();
				FlushErrorState();
			}
			PG_END_TRY();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms > 0 ? ms : 60000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
ti_history_init(void)
{
	ti_register_db_workers(ti_history_purge_databases, "tenant_iso.history_purge_databases",
						   "ti_history_purge_main", "tenant_iso history purge",
						   BgWorkerStart_RecoveryFinished);
}
