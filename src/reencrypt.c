/*
 * src/reencrypt.c
 *	  reencrypt(): rewrite every ciphertext of a column that is not under
 *	  its tenant's active key version, across all tenants, in committed
 *	  batches.
 *
 * A SQL function cannot commit, so the work runs in a dynamic background
 * worker connected to the same database; the calling backend waits for it
 * and returns its count.  The worker walks the table in ranges of blocks
 * (TID range scans), locks the rows of one range that need work (FOR
 * UPDATE), rewrites them and commits.  Each batch is atomic, and a row is
 * only ever replaced by a ciphertext of the same plaintext, so a crash
 * (kill -9) loses nothing: rerunning finds the rows still under old
 * versions.  The worker runs as the table's owner (never a superuser), after
 * the caller's SELECT and UPDATE privileges were checked; inside it, and only
 * there, the tenant policies admit every tenant (ti_maintenance_worker).
 * Partitions and inheritance children are processed one leaf at a time.
 *
 * Elevated paths: the worker runs as the table's owner with the database's
 * default search_path; every batch pins search_path = pg_catalog, pg_temp
 * (ti_pin_search_path, src/elevated.c) inside its transaction, and the
 * SQL it runs is schema-qualified, operators included.
 *
 * Shared state is one DSM segment (ReencryptShared); the worker writes only
 * processed, failed, errmsg and the skipped-value report.  Error messages
 * never carry values.
 *
 * One tenant cannot stall the others: a value that does not open (garbage,
 * altered, sealed under another context, or a header claiming a key version
 * its tenant does not have) is skipped, counted and reported by table, ctid
 * and tenant (never by value), and the run goes on.  The caller raises one
 * WARNING with the count and keeps the list (the first
 * REENCRYPT_MAX_REPORTED) for tenant_iso.reencrypt_failures() in this
 * session.  Only errors that concern the run as a whole (master key, SPI,
 * cancel) still stop it.  Values whose header claims the tenant's active
 * version are not opened: the header is authenticated (associated data), so
 * a forged "current" header opens under no key, and leaving it in place
 * loses nothing.
 */
#include "postgres.h"

#include "access/xact.h"
#include "elevated.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_class.h"
#include "storage/pmsignal.h"
#include "utils/syscache.h"
#include "access/htup_details.h"

#include "funcapi.h"
#include "utils/tuplestore.h"

#include "envelope.h"
#include "keys.h"
#include "token.h"
#include "tenant_iso.h"

#define REENCRYPT_MAX_REPORTED 1000

typedef enum ReencryptReason
{
	REENC_DOES_NOT_OPEN,
	REENC_UNKNOWN_VERSION
} ReencryptReason;

typedef struct ReencryptFailure
{
	Oid			relid;			/* the leaf table */
	ItemPointerData tid;
	uint8		reason;			/* ReencryptReason */
	char		tenant[TI_TENANT_ID_MAX + 1];
} ReencryptFailure;

typedef struct ReencryptShared
{
	Oid			dbid;
	Oid			relid;
	Oid			owner;
	int32		batch_size;
	NameData	column;
	NameData	tenant_column;
	int64		processed;
	bool		failed;
	bool		finished;
	char		errmsg[512];
	int64		skipped;		/* values that did not open */
	int32		n_reported;		/* entries used in reported[] */
	ReencryptFailure reported[REENCRYPT_MAX_REPORTED];
	int32		context_len;
	char		context[FLEXIBLE_ARRAY_MEMBER];
} ReencryptShared;

PGDLLEXPORT void ti_reencrypt_worker_main(Datum main_arg);
static void keep_report(ReencryptShared *sh);

/* The report of the last reencrypt() run of this session. */
static ReencryptFailure *last_failures = NULL;
static int	n_last_failures = 0;

static bool
needs_work(const char *tenant, bytea *ct)
{
	int64		version = ti_envelope_key_version((uint8 *) VARDATA_ANY(ct), VARSIZE_ANY_EXHDR(ct));
	int64		active;

	if (version < 0)
		return false;			/* not an envelope: leave it alone */
	active = ti_active_version(tenant);
	if (active <= 0)
		return false;
	/* current key and current format (format 1 values move to format 2) */
	if (version == active &&
		ti_envelope_format((uint8 *) VARDATA_ANY(ct), VARSIZE_ANY_EXHDR(ct)) == TI_ENV_VERSION)
		return false;
	/* shredded keys: nothing can open these, nothing to report */
	return ti_key_version_state(tenant, (uint32) version) != TI_KEY_DESTROYED;
}

static void
report_failure(ReencryptShared *sh, Oid leaf, Datum tid, const char *tenant, bytea *ct)
{
	ReencryptFailure *f;
	int64		version = ti_envelope_key_version((uint8 *) VARDATA_ANY(ct), VARSIZE_ANY_EXHDR(ct));

	sh->skipped++;
	if (sh->n_reported >= REENCRYPT_MAX_REPORTED)
		return;
	f = &sh->reported[sh->n_reported++];
	f->relid = leaf;
	ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &f->tid);
	f->reason = (ti_key_version_state(tenant, (uint32) version) == TI_KEY_UNKNOWN) ?
		REENC_UNKNOWN_VERSION : REENC_DOES_NOT_OPEN;
	strlcpy(f->tenant, tenant, sizeof(f->tenant));
}

/*
 * Rewrite the values of one block range of one leaf table that are under
 * an older key version.  No row locks are taken up front: each UPDATE
 * matches the ciphertext it read, so a value changed concurrently is simply
 * left for the next run.
 */
static int64
reencrypt_range(ReencryptShared *sh, Oid leaf, const char *sql_select, const char *sql_update,
				BlockNumber start, BlockNumber end)
{
	Oid			argtypes[2] = {TIDOID, TIDOID};
	Datum		values[2];
	ItemPointerData lo,
				hi;
	int64		done = 0;
	uint64		i;
	SPITupleTable *tt;
	uint64		n;

	ItemPointerSet(&lo, start, 0);
	ItemPointerSet(&hi, end, 0);
	values[0] = PointerGetDatum(&lo);
	values[1] = PointerGetDatum(&hi);
	if (SPI_execute_with_args(sql_select, 2, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rows to re-encrypt");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		Datum		tid = SPI_getbinval(tup, tt->tupdesc, 1, &isnull);
		char	   *tenant = TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		bytea	   *ct = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
		bytea	   *pt;
		bytea	   *nct;
		Oid			uargtypes[3] = {BYTEAOID, TIDOID, BYTEAOID};
		Datum		uvalues[3];

		if (!needs_work(tenant, ct))
			continue;
		pt = ti_try_decrypt_for(tenant, sh->context, sh->context_len, NULL, 0,
								(uint8 *) VARDATA_ANY(ct), VARSIZE_ANY_EXHDR(ct));
		if (pt == NULL)
		{
			report_failure(sh, leaf, tid, tenant, ct);
			continue;
		}
		nct = ti_encrypt_for(tenant, sh->context, sh->context_len, NULL, 0,
							 (uint8 *) VARDATA(pt), VARSIZE(pt) - VARHDRSZ);
		memset(VARDATA(pt), 0, VARSIZE(pt) - VARHDRSZ);
		uvalues[0] = PointerGetDatum(nct);
		uvalues[1] = tid;
		uvalues[2] = PointerGetDatum(ct);
		if (SPI_execute_with_args(sql_update, 3, uargtypes, uvalues, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not store a re-encrypted value");
		done += SPI_processed;
	}
	return done;
}

static int	batch_nestlevel;

static void
batch_begin(void)
{
	if (!PostmasterIsAlive())
		proc_exit(1);
	CHECK_FOR_INTERRUPTS();
	StartTransactionCommand();
	batch_nestlevel = ti_pin_search_path();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
batch_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	ti_unpin_search_path(batch_nestlevel);
	CommitTransactionCommand();
}

/* Re-encrypt one leaf table (a plain table, a partition or a child). */
static void
reencrypt_leaf(ReencryptShared *sh, Oid leaf)
{
	char	   *relname;
	char	   *sql_select;
	char	   *sql_update;
	BlockNumber nblocks = 0;
	BlockNumber step = 1;
	BlockNumber b;
	const char *tcol = quote_identifier(NameStr(sh->tenant_column));
	const char *col = quote_identifier(NameStr(sh->column));

	batch_begin();
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(leaf)),
										 get_rel_name(leaf));
	sql_select = MemoryContextStrdup(TopMemoryContext,
									 psprintf("SELECT t.ctid, t.%s::pg_catalog.text, t.%s FROM ONLY %s t "
											  "WHERE t.ctid OPERATOR(pg_catalog.>=) $1 AND t.ctid OPERATOR(pg_catalog.<) $2 "
											  "AND t.%s IS NOT NULL AND t.%s IS NOT NULL",
											  tcol, col, relname, col, tcol));
	sql_update = MemoryContextStrdup(TopMemoryContext,
									 psprintf("UPDATE ONLY %s SET %s = $1 WHERE ctid OPERATOR(pg_catalog.=) $2 AND %s OPERATOR(pg_catalog.=) $3",
											  relname, col, col));
	if (SPI_execute(psprintf("SELECT pg_catalog.int8div(pg_catalog.pg_relation_size(%u::pg_catalog.oid::pg_catalog.regclass), "
							 "pg_catalog.current_setting('block_size')::pg_catalog.int8), "
							 "pg_catalog.float8div(greatest(reltuples, 0)::pg_catalog.float8, greatest(relpages, 1)::pg_catalog.float8) "
							 "FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) %u::pg_catalog.oid",
							 leaf, leaf), true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		double		per_block;

		nblocks = (BlockNumber) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1, &isnull));
		per_block = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 2, &isnull));
		if (per_block >= 1)
			step = Max(1, (BlockNumber) (sh->batch_size / per_block));
	}
	batch_end();

	for (b = 0; b < nblocks; b += step)
	{
		batch_begin();
		sh->processed += reencrypt_range(sh, leaf, sql_select, sql_update, b, b + step);
		batch_end();
	}
	pfree(sql_select);
	pfree(sql_update);
}

void
ti_reencrypt_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	ReencryptShared *sh;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		proc_exit(1);
	sh = dsm_segment_address(seg);
	/*
	 * Connect as the bootstrap superuser (the owner may be NOLOGIN), then
	 * become the table's owner, as SET ROLE would: its triggers and index
	 * expressions run with its rights, never a superuser's.
	 */
	BackgroundWorkerInitializeConnectionByOid(sh->dbid, BOOTSTRAP_SUPERUSERID, 0);
	pgstat_report_appname("tenant_iso reencrypt");
	StartTransactionCommand();
	SetCurrentRoleId(sh->owner, superuser_arg(sh->owner));
	CommitTransactionCommand();
	ti_maintenance_worker = true;

	PG_TRY();
	{
		List	   *leaves;
		ListCell   *lc;

		batch_begin();
		leaves = NIL;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			List	   *all = find_all_inheritors(sh->relid, AccessShareLock, NULL);

			foreach(lc, all)
				if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
					leaves = lappend_oid(leaves, lfirst_oid(lc));
			MemoryContextSwitchTo(old);
		}
		batch_end();
		foreach(lc, leaves)
			reencrypt_leaf(sh, lfirst_oid(lc));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		strlcpy(sh->errmsg, edata->message ? edata->message : "unknown error", sizeof(sh->errmsg));
		sh->failed = true;
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	ti_keys_flush();
	sh->finished = true;
	dsm_detach(seg);
	proc_exit(0);
}


PG_FUNCTION_INFO_V1(ti_reencrypt);
Datum
ti_reencrypt(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *column;
	text	   *context;
	int32		batch;
	const char *tenant_column;
	AttrNumber	attnum;
	dsm_segment *seg;
	ReencryptShared *sh;
	Size		size;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;
	int64		processed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and column must not be null")));
	relid = PG_GETARG_OID(0);
	column = NameStr(*PG_GETARG_NAME(1));
	context = PG_ARGISNULL(2) ? cstring_to_text("") : PG_GETARG_TEXT_PP(2);
	batch = PG_ARGISNULL(3) ? 1000 : PG_GETARG_INT32(3);

	if (ti_in_tenant_context())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("reencrypt() is not allowed in a tenant context"),
				 errdetail("It rewrites the rows of every tenant."),
				 errhint("Run it as an administrator that is not a tenant member, outside any tenant context.")));
	if (batch < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive")));
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	tenant_column = ti_protected_column(relid);
	if (tenant_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not protected", get_rel_name(relid)),
				 errhint("reencrypt() finds each row's tenant through the protected tenant column.")));
	attnum = get_attnum(relid, column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", column, get_rel_name(relid))));
	if (get_atttype(relid, attnum) != BYTEAOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is not of type bytea", column)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(relid, GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	if (IsTransactionBlock() || IsSubTransaction())
		ereport(NOTICE,
				(errmsg("reencrypt() commits its batches independently of the calling transaction")));

	size = offsetof(ReencryptShared, context) + VARSIZE_ANY_EXHDR(context) + 1;
	seg = dsm_create(size, 0);
	sh = dsm_segment_address(seg);
	memset(sh, 0, size);
	sh->dbid = MyDatabaseId;
	sh->relid = relid;
	sh->owner = ti_rel_owner(relid);
	sh->batch_size = batch;
	namestrcpy(&sh->column, column);
	namestrcpy(&sh->tenant_column, tenant_column);
	sh->context_len = VARSIZE_ANY_EXHDR(context);
	memcpy(sh->context, VARDATA_ANY(context), sh->context_len);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tenant_iso");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "ti_reencrypt_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tenant_iso reencrypt");
	snprintf(worker.bgw_type, BGW_MAXLEN, "tenant_iso reencrypt");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for reencrypt()"),
				 errhint("Raise max_worker_processes.")));
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the reencrypt() background worker did not start")));
	PG_TRY();
	{
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited during reencrypt()")));
	}
	PG_CATCH();
	{
		TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();

	processed = sh->processed;
	keep_report(sh);
	if (!sh->failed && !sh->finished)
	{
		sh->failed = true;
		strlcpy(sh->errmsg, "the background worker exited early", sizeof(sh->errmsg));
	}
	if (sh->failed)
	{
		char	   *msg = pstrdup(sh->errmsg);

		dsm_detach(seg);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("reencrypt() stopped after %lld values: %s", (long long) processed, msg),
				 errhint("The batches already committed are kept; run reencrypt() again once the cause is fixed.")));
	}
	if (sh->skipped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("reencrypt() skipped %lld values that could not be opened",
						(long long) sh->skipped),
				 errdetail("They were left unchanged; every other value was processed."),
				 errhint("tenant_iso.reencrypt_failures() lists them (the first %d) by table, ctid and tenant.",
						 REENCRYPT_MAX_REPORTED)));
	dsm_detach(seg);
	PG_RETURN_INT64(processed);
}

/* Copy the worker's report into this session, replacing the previous one. */
static void
keep_report(ReencryptShared *sh)
{
	if (last_failures != NULL)
		pfree(last_failures);
	last_failures = NULL;
	n_last_failures = 0;
	if (sh->n_reported > 0)
	{
		Size		sz = sizeof(ReencryptFailure) * Min(sh->n_reported, REENCRYPT_MAX_REPORTED);

		last_failures = MemoryContextAlloc(TopMemoryContext, sz);
		memcpy(last_failures, sh->reported, sz);
		n_last_failures = Min(sh->n_reported, REENCRYPT_MAX_REPORTED);
	}
}

/*
 * reencrypt_failures(): the values the last reencrypt() of this session
 * skipped, by table, ctid and tenant.  Session-local: it shows only what
 * this session's own run reported, on tables it had SELECT and UPDATE on.
 */
PG_FUNCTION_INFO_V1(ti_reencrypt_failures);
Datum
ti_reencrypt_failures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < n_last_failures; i++)
	{
		ReencryptFailure *f = &last_failures[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		ItemPointer tid = palloc(sizeof(ItemPointerData));

		ItemPointerCopy(&f->tid, tid);
		values[0] = ObjectIdGetDatum(f->relid);
		values[1] = PointerGetDatum(tid);
		values[2] = CStringGetTextDatum(f->tenant);
		values[3] = CStringGetTextDatum(f->reason == REENC_UNKNOWN_VERSION ?
										"unknown key version" : "does not open");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
