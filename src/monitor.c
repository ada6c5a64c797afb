/*
 * src/monitor.c
 *	  The integrity monitor: one background worker per database listed in
 *	  tenant_iso.monitor_databases, which every tenant_iso.verify_interval
 *	  runs tenant_iso._monitor_check() on each tracked table (the decision
 *	  rules are in sql/src/85_monitor.sql and docs/design/monitor.md), and
 *	  the small C helpers of those rules.
 *
 * A run is recorded in tenant_iso.monitor_runs as it goes: each table is
 * checked in its own transaction, which also advances the run's
 * last_table, so a worker that is killed (or a server that crashes) in the
 * middle of a run, or of a repair, resumes after its last completed table
 * when it comes back; the interrupted table's repair was rolled back with
 * its transaction and is done again.  On a hot standby the worker only
 * verifies its copy and reports (it cannot write).  Its reads run at a
 * lower CPU priority (nice 10).
 *
 * Elevated paths: the worker runs as the bootstrap superuser.  Each of its
 * transactions pins search_path = pg_catalog, pg_temp (a GUC nest level,
 * popped at commit or abort) and its SQL is schema-qualified, operators
 * included; _monitor_check() and monitor_run() carry
 * SET search_path = pg_catalog, pg_temp as well.  _key_hash(),
 * _monitor_conninfo() and _monitor_nice() run no SQL.
 */
#include "postgres.h"

#include <sys/resource.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

/* the nice value of the worker, and of a peer's backends that serve it */
#define TI_MONITOR_NICE 10

#include "guc.h"
#include "kdf.h"
#include "tenant_iso.h"

PGDLLEXPORT void ti_monitor_main(Datum arg);
extern Datum ti_conninfo_has_password(PG_FUNCTION_ARGS);

/*
 * Register one worker per database of a comma-separated list setting
 * (tenant_iso.monitor_databases, tenant_iso.history_purge_databases).
 */
void
ti_register_db_workers(const char *list_setting, const char *setting_name,
					   const char *function, const char *type, BgWorkerStartTime start)
{
	char	   *list;
	List	   *names;
	ListCell   *lc;

	if (list_setting == NULL || list_setting[0] == '\0')
		return;
	list = pstrdup(list_setting);
	if (!SplitIdentifierString(list, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in %s", setting_name)));
	foreach(lc, names)
	{
		BackgroundWorker w;
		const char *db = lfirst(lc);

		if (strlen(db) >= BGW_EXTRALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("database name in %s is too long", setting_name)));
		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = start;
		w.bgw_restart_time = 10;
		snprintf(w.bgw_library_name, BGW_MAXLEN, "tenant_iso");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "%s", function);
		snprintf(w.bgw_name, BGW_MAXLEN, "%s %s", type, db);
		snprintf(w.bgw_type, BGW_MAXLEN, "%s", type);
		strlcpy(w.bgw_extra, db, BGW_EXTRALEN);
		RegisterBackgroundWorker(&w);
	}
}

void
ti_monitor_init(void)
{
	/* from a consistent state on, so that a hot standby checks its copy too */
	ti_register_db_workers(ti_monitor_databases, "tenant_iso.monitor_databases",
						   "ti_monitor_main", "tenant_iso integrity monitor",
						   BgWorkerStart_ConsistentState);
}

/* ---------------------------------------------------------------------
 * The worker
 * --------------------------------------------------------------------- */

/* Begin a transaction with search_path pinned; returns the GUC nest level. */
static int
begin_pinned(const char *activity)
{
	int			nest;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	pgstat_report_activity(STATE_RUNNING, activity);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return nest;
}

static void
end_pinned(int nest)
{
	SPI_finish();
	AtEOXact_GUC(true, nest);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* One int8 (or NULL: -1) from a one-row SPI result. */
static int64
spi_int8(int col)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed != 1)
		return -1;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? -1 : DatumGetInt64(d);
}

/*
 * Start a run, or resume the one a crash interrupted.  Returns the run id
 * (0 on a hot standby, -1 when the extension is not there or is older
 * than the monitor), the tables still to check (relnames, in order) and,
 * through *wait_ms, how long to wait first.
 */
static int64
run_begin(List **tables)
{
	int			nest = begin_pinned("tenant_iso: integrity monitor");
	int64		run = -1;
	bool		standby = RecoveryInProgress();
	const char *last = NULL;
	uint64		i;
	bool		isnull;
	MemoryContext outer = CurTransactionContext;

	*tables = NIL;
	if (SPI_execute("SELECT pg_catalog.to_regprocedure('tenant_iso._monitor_check(pg_catalog.regclass)') "
					"IS NOT NULL AND pg_catalog.to_regclass('tenant_iso.monitor_runs') IS NOT NULL",
					true, 0) == SPI_OK_SELECT && SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		if (standby)
			run = 0;
		else
		{
			/* an unfinished run (a crash) is resumed after its last table */
			if (SPI_execute("SELECT r.run_id, r.last_table FROM tenant_iso.monitor_runs r "
							"WHERE r.finished_at IS NULL ORDER BY r.run_id DESC LIMIT 1",
							false, 0) == SPI_OK_SELECT && SPI_processed == 1)
			{
				run = spi_int8(1);
				last = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
				if (last)
					last = MemoryContextStrdup(outer, last);
				ereport(LOG,
						(errmsg("tenant_iso: integrity monitor resumes run %lld%s%s",
								(long long) run, last ? " after " : "", last ? last : "")));
			}
			else if (SPI_execute("INSERT INTO tenant_iso.monitor_runs DEFAULT VALUES RETURNING run_id",
								 false, 0) == SPI_OK_INSERT_RETURNING)
				run = spi_int8(1);
		}
		if (run >= 0)
		{
			Oid			argtypes[1] = {TEXTOID};
			Datum		values[1];

			values[0] = last ? CStringGetTextDatum(last) : (Datum) 0;
			if (SPI_execute_with_args("SELECT k.relname FROM tenant_iso.tracked k "
									  "WHERE $1 IS NULL OR k.relname OPERATOR(pg_catalog.>) $1 "
									  "ORDER BY k.relname COLLATE \"C\"",
									  1, argtypes, values, last ? NULL : "n", true, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not read the tracked tables");
			for (i = 0; i < SPI_processed; i++)
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				*tables = lappend(*tables, pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
																 SPI_tuptable->tupdesc, 1)));
				MemoryContextSwitchTo(old);
			}
		}
	}
	end_pinned(nest);
	return run;
}

/* Check one table, in its own transaction, and advance the run. */
static void
run_table(int64 run, const char *relname)
{
	int			nest = begin_pinned("tenant_iso: integrity monitor, checking a table");
	Oid			argtypes[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};
	Datum		values[4];
	int64		bytes0 = ti_peer_bytes_total;
	int64		events;

	values[0] = CStringGetTextDatum(relname);
	if (SPI_execute_with_args("SELECT tenant_iso._monitor_check(k.rel) FROM tenant_iso.tracked k "
							  "WHERE k.relname OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check %s", relname);
	events = spi_int8(1);
	if (run > 0)
	{
		values[1] = Int64GetDatum(ti_peer_bytes_total - bytes0);
		values[2] = Int64GetDatum(Max(events, 0));
		values[3] = Int64GetDatum(run);
		SPI_execute_with_args("UPDATE tenant_iso.monitor_runs r SET last_table = $1, "
							  "tables_done = r.tables_done OPERATOR(pg_catalog.+) 1, "
							  "bytes = r.bytes OPERATOR(pg_catalog.+) $2, "
							  "events = r.events OPERATOR(pg_catalog.+) $3 "
							  "WHERE r.run_id OPERATOR(pg_catalog.=) $4",
							  4, argtypes, values, NULL, false, 0);
	}
	end_pinned(nest);
}

static void
run_end(int64 run)
{
	int			nest;

	if (run <= 0)
		return;
	nest = begin_pinned("tenant_iso: integrity monitor");
	SPI_execute("UPDATE tenant_iso.monitor_runs r SET finished_at = pg_catalog.clock_timestamp() "
				"WHERE r.finished_at IS NULL", false, 0);
	end_pinned(nest);
}

/* Milliseconds until the next run is due, from the last finished one. */
static long
next_run_in(void)
{
	int			nest;
	bool		isnull0;
	long		ms = (long) ti_verify_interval * 1000L;

	if (RecoveryInProgress())
		return ms;
	nest = begin_pinned("tenant_iso: integrity monitor");
	if (SPI_execute("SELECT pg_catalog.to_regclass('tenant_iso.monitor_runs') IS NOT NULL",
					true, 0) == SPI_OK_SELECT && SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull0)) &&
		SPI_execute("SELECT (pg_catalog.date_part('epoch', pg_catalog.max(r.finished_at) "
					"OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) "
					"OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 FROM tenant_iso.monitor_runs r",
					true, 0) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			ms = Max(0L, (long) (DatumGetInt64(d) + (int64) ti_verify_interval * 1000));
	}
	end_pinned(nest);
	return Min(ms, (long) ti_verify_interval * 1000L);
}

static void
monitor_error(void)
{
	EmitErrorReport();
	AbortCurrentTransaction();
	FlushErrorState();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
ti_monitor_main(Datum arg)
{
	volatile long wait_ms;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	pgstat_report_appname("tenant_iso integrity monitor");
	/* its reads yield to the applications' */
	(void) setpriority(PRIO_PROCESS, 0, TI_MONITOR_NICE);

	/*
	 * After a restart: at once if a run was interrupted, else when the
	 * last finished one is an interval old.
	 */
	PG_TRY();
	{
		wait_ms = next_run_in();
	}
	PG_CATCH();
	{
		monitor_error();
		wait_ms = (long) ti_verify_interval * 1000L;
	}
	PG_END_TRY();

	for (;;)
	{
		List	   *volatile tables = NIL;
		volatile int64 run = -1;
		ListCell   *lc;

		/*
		 * A reload that came during the last run counts now: the run's own
		 * waits (libpq, locks) may have consumed the latch its signal set.
		 */
		if (!ConfigReloadPending)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		wait_ms = (long) ti_verify_interval * 1000L;

		PG_TRY();
		{
			List	   *t;

			run = run_begin(&t);
			tables = t;
		}
		PG_CATCH();
		{
			monitor_error();
		}
		PG_END_TRY();
		if (run < 0)
			continue;
		foreach(lc, tables)
		{
			const char *relname = lfirst(lc);

			CHECK_FOR_INTERRUPTS();
			PG_TRY();
			{
				run_table(run, relname);
			}
			PG_CATCH();
			{
				monitor_error();
			}
			PG_END_TRY();
		}
		PG_TRY();
		{
			run_end(run);
		}
		PG_CATCH();
		{
			monitor_error();
		}
		PG_END_TRY();
		list_free_deep(tables);
	}
}

/* ---------------------------------------------------------------------
 * Helpers of the decision rules
 * --------------------------------------------------------------------- */

/*
 * _key_hash(tenant text, key text): a keyed hash of a row's primary key
 * (its jsonb text), which integrity_events records instead of the key: the
 * key is not recoverable from it, even for small integer keys, without the
 * master key.  16 bytes, hex.
 */
PG_FUNCTION_INFO_V1(ti_key_hash_fn);
Datum
ti_key_hash_fn(PG_FUNCTION_ARGS)
{
	text	   *tenant = PG_GETARG_TEXT_PP(0);
	text	   *key = PG_GETARG_TEXT_PP(1);
	uint8		k[TI_KEY_LEN];
	uint8		mac[TI_MAC_LEN];
	StringInfoData msg;
	char		hex[33];
	int			i;

	initStringInfo(&msg);
	appendBinaryStringInfo(&msg, VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant));
	appendStringInfoChar(&msg, '\0');
	ti_derive_key("monitor key hash", k);
	if (ti_hmac_sha256(k, TI_KEY_LEN, (const uint8 *) msg.data, msg.len + 1,
					   (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), mac) != 0)
	{
		ti_wipe(k, sizeof(k));
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not hash a row key")));
	}
	ti_wipe(k, sizeof(k));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* A conninfo value in single quotes, with \ and ' escaped. */
static char *
conninfo_quote(const char *v)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoChar(&q, '\'');
	for (; *v; v++)
	{
		if (*v == '\'' || *v == '\\')
			appendStringInfoChar(&q, '\\');
		appendStringInfoChar(&q, *v);
	}
	appendStringInfoChar(&q, '\'');
	return q.data;
}

/*
 * _monitor_conninfo(): how a peer reaches this node, for a subscriber that
 * the monitor asks to repair itself from here: tenant_iso.monitor_conninfo,
 * or this server's loopback address, port and database.
 */
PG_FUNCTION_INFO_V1(ti_monitor_conninfo_fn);
Datum
ti_monitor_conninfo_fn(PG_FUNCTION_ARGS)
{
	if (ti_monitor_conninfo != NULL && ti_monitor_conninfo[0] != '\0')
	{
		/* it is sent to peers: never with a password (and never echoed) */
		if (DatumGetBool(DirectFunctionCall1(ti_conninfo_has_password,
											 CStringGetTextDatum(ti_monitor_conninfo))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant_iso.monitor_conninfo may not hold a password"),
					 errhint("Give the peers a passfile, or set tenant_iso.peer_password_command on them.")));
		PG_RETURN_TEXT_P(cstring_to_text(ti_monitor_conninfo));
	}
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("host=127.0.0.1 port=%d dbname=%s user=%s sslmode=disable",
											  PostPortNumber,
											  conninfo_quote(get_database_name(MyDatabaseId)),
											  conninfo_quote(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false)))));
}

/*
 * _monitor_nice(): the calling backend yields the CPU from now on (nice 10,
 * as the worker).  A peer's monitor calls it first on its connection here,
 * so that this copy's verify() for it runs at low priority too; the backend
 * serves that connection only and exits with it.  Superuser only.
 */
PG_FUNCTION_INFO_V1(ti_monitor_nice);
Datum
ti_monitor_nice(PG_FUNCTION_ARGS)
{
	int			cur;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may lower a backend's priority for the integrity monitor")));
	errno = 0;
	cur = getpriority(PRIO_PROCESS, 0);
	/* never raise it (that needs privileges, and is not what was asked) */
	if (errno == 0 && cur < TI_MONITOR_NICE)
		(void) setpriority(PRIO_PROCESS, 0, TI_MONITOR_NICE);
	PG_RETURN_VOID();
}

/* _conninfo_has_password(conninfo text): add_peer() refuses one that has. */
PG_FUNCTION_INFO_V1(ti_conninfo_has_password);
Datum
ti_conninfo_has_password(PG_FUNCTION_ARGS)
{
	char	   *ci = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(ci, &err);
	PQconninfoOption *o;
	bool		has = false;

	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		/* never echo the string: it may hold a password */
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid connection string"),
				 errdetail("The peer's connection string is malformed."),
				 errhidestmt(true)));
	}
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			has = true;
	PQconninfoFree(opts);
	PG_RETURN_BOOL(has);
}
