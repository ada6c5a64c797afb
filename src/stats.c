/*
 * src/stats.c
 *	  Per-tenant statistics in shared memory: the tenant_stats and
 *	  tenant_query_stats views, reset_tenant_stats(), and the bookkeeping of
 *	  each backend's tenant (sessions_in_context) and of each top-level
 *	  statement (active_statements, counters) that admission.c relies on.
 *
 * What is a statement.  A top-level executor run (a query sent by the
 * client, a FETCH from a cursor, an EXECUTE of a prepared statement) or a
 * top-level utility statement other than transaction control, PREPARE,
 * EXECUTE, DEALLOCATE, DECLARE, FETCH and CLOSE (which count through the
 * query they run).  Statements inside functions are part of the statement
 * that called them.  A statement counts for the tenant whose context was in
 * effect when it started; statements outside any context (and in a
 * conflicting one) count for the row tenant = NULL.
 *
 * What is measured, from ExecutorRun and ExecutorFinish (or around the
 * utility): wall-clock time, the backend's user + system CPU time
 * (CLOCK_THREAD_CPUTIME_ID: a backend has one thread), shared buffer hits and reads, temporary blocks written and
 * WAL bytes (pgBufferUsage and pgWalUsage, which include parallel workers'
 * counts; their CPU time is not included).  rows_read is the row count of
 * SELECT, rows_written that of INSERT, UPDATE, DELETE and MERGE.
 *
 * Locking.  stats_lock (shared) protects the hash's structure for lookups,
 * (exclusive) for inserts, evictions and reset; each entry's spinlock its
 * fields.  A backend pins the entry of its current tenant (one pin per
 * session) and of each running top-level statement, so that it may use the
 * pointer without the lock; eviction (under the exclusive lock) only takes
 * entries that nothing pins and nobody waits for.  A backend's pins are
 * released at transaction end for statements, at a context change for the
 * session, and by a before_shmem_exit callback when it exits.  A backend
 * killed with SIGKILL makes the postmaster reinitialise shared memory, so
 * nothing it held survives.
 *
 * Elevated paths: none.  Nothing here runs SQL or resolves names; the SQL
 * wrapper of tenant_query_stats (80_neighbours.sql) runs as the caller with
 * search_path pinned.
 */
#include "postgres.h"

#include <time.h>

#include "access/parallel.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "neighbours.h"
#include "tenant_iso.h"

int			ti_stats_max_tenants = 10000;
int			ti_stats_period_s = 60;
bool		ti_track_stats = true;
bool		ti_track_queries = false;
int			ti_stats_queries_per_tenant = 20;

typedef struct TiStatsShared
{
	LWLock	   *lock;
	int			nqueries;		/* query slots per entry, fixed at start */
	TiTenantStats *other;		/* the overflow NULL row, outside the hash */
	int			ntenants;		/* entries of tenants (not NULL rows) */
} TiStatsShared;

/* room in the hash for the NULL rows of this many databases */
#define TI_NULL_ROWS 64

static TiStatsShared *shared = NULL;
static HTAB *stats_hash = NULL;
TiSlot	   *ti_slots = NULL;
int			ti_nslots = 0;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* the entry of this backend's current tenant (pinned), or NULL */
static TiTenantStats *session_entry = NULL;

/* the top-level statements of this backend that have started and not ended */
typedef struct StmtRec
{
	QueryDesc  *qd;
	TiTenantStats *e;
	TiCounters	acc;			/* measured so far, added to e at its end */
	SubTransactionId subxid;	/* the subtransaction it started in */
} StmtRec;

static StmtRec *recs = NULL;
static int	nrecs = 0;
static int	maxrecs = 0;

/* the outermost measured run (ExecutorRun, ExecutorFinish or a utility) */
typedef struct RunState
{
	TiTenantStats *e;
	StmtRec    *rec;			/* NULL for a utility */
	bool		measured;
	bool		admitted;		/* holds one of e->active */
	bool		is_run;			/* ExecutorRun (rows are counted there) */
	instr_time	t0;
	struct timespec cpu0;
	BufferUsage bu0;
	WalUsage	wu0;
} RunState;

static RunState run_state;
static bool in_run = false;

static Size
entry_size(int nqueries)
{
	return add_size(offsetof(TiTenantStats, queries),
					mul_size(nqueries, sizeof(TiQueryStat)));
}

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static void
stats_shmem_request(void)
{
	int			nq = ti_track_queries ? ti_stats_queries_per_tenant : 0;
	Size		size;

	if (prev_shmem_request)
		prev_shmem_request();
	size = MAXALIGN(sizeof(TiStatsShared));
	size = add_size(size, MAXALIGN(entry_size(nq)));
	size = add_size(size, mul_size(slot_count(), sizeof(TiSlot)));
	size = add_size(size, hash_estimate_size(ti_stats_max_tenants + TI_NULL_ROWS, entry_size(nq)));
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche("tenant_iso_stats", 1);
}

static void
init_entry(TiTenantStats *e, int64 period)
{
	SpinLockInit(&e->mutex);
	e->period = period;
	memset(&e->cur, 0, sizeof(TiCounters));
	memset(&e->prev, 0, sizeof(TiCounters));
	memset(&e->total, 0, sizeof(TiCounters));
	e->last_active = 0;
	e->stats_reset = GetCurrentTimestamp();
	e->pins = 0;
	e->sessions = 0;
	e->active = 0;
	e->waiting = 0;
	e->wait_head = -1;
	e->wait_tail = -1;
	e->tokens = 0;
	e->bucket_at = 0;
	e->logged_period = -1;
	e->nqueries = 0;
}

static void
stats_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;
	int			nq = ti_track_queries ? ti_stats_queries_per_tenant : 0;

	if (prev_shmem_startup)
		prev_shmem_startup();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("tenant_iso stats", sizeof(TiStatsShared), &found);
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche("tenant_iso_stats"))->lock;
		shared->nqueries = nq;
		shared->ntenants = 0;
		shared->other = ShmemAlloc(entry_size(nq));
		memset(shared->other, 0, entry_size(nq));
		init_entry(shared->other, ti_stats_period_of(GetCurrentTimestamp()));
	}
	ti_nslots = slot_count();
	ti_slots = ShmemInitStruct("tenant_iso slots", sizeof(TiSlot) * ti_nslots, &found);
	if (!found)
	{
		for (int i = 0; i < ti_nslots; i++)
		{
			ti_slots[i].next = -1;
			ti_slots[i].queued_on = NULL;
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(TiStatsKey);
	info.entrysize = entry_size(nq);
	stats_hash = ShmemInitHash("tenant_iso tenant stats",
							   ti_stats_max_tenants + TI_NULL_ROWS,
							   ti_stats_max_tenants + TI_NULL_ROWS,
							   &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

int64
ti_stats_period_of(TimestampTz now)
{
	return now / ((int64) ti_stats_period_s * USECS_PER_SEC);
}

/* Move e to the given period; the caller holds e->mutex. */
void
ti_stats_rotate(TiTenantStats *e, int64 period)
{
	if (e->period == period)
		return;
	if (e->period == period - 1)
		e->prev = e->cur;
	else
		memset(&e->prev, 0, sizeof(TiCounters));
	memset(&e->cur, 0, sizeof(TiCounters));
	e->period = period;
}

static void
add_counters(TiCounters *to, const TiCounters *from)
{
	to->statements += from->statements;
	to->rows_read += from->rows_read;
	to->rows_written += from->rows_written;
	to->exec_time_ms += from->exec_time_ms;
	to->cpu_time_ms += from->cpu_time_ms;
	to->shared_blks_hit += from->shared_blks_hit;
	to->shared_blks_read += from->shared_blks_read;
	to->temp_blks_written += from->temp_blks_written;
	to->wal_bytes += from->wal_bytes;
	to->throttled += from->throttled;
	to->rejected += from->rejected;
}

/*
 * Add d (if not NULL) to the current period and the totals of e, and move
 * its pins and active count, under one acquisition of its spinlock.
 * Returns the head of its FIFO when a slot was freed, else -1.
 */
static int
settle(TiTenantStats *e, const TiCounters *d, int pins_delta, int active_delta)
{
	TimestampTz now = d ? GetCurrentTimestamp() : 0;
	int			head = -1;

	SpinLockAcquire(&e->mutex);
	if (d)
	{
		ti_stats_rotate(e, ti_stats_period_of(now));
		add_counters(&e->cur, d);
		add_counters(&e->total, d);
		e->last_active = now;
	}
	e->pins += pins_delta;
	e->active += active_delta;
	if (active_delta < 0)
		head = e->wait_head;
	SpinLockRelease(&e->mutex);
	return head;
}

static void
pin(TiTenantStats *e)
{
	SpinLockAcquire(&e->mutex);
	e->pins++;
	SpinLockRelease(&e->mutex);
}

static void
unpin(TiTenantStats *e)
{
	SpinLockAcquire(&e->mutex);
	e->pins--;
	SpinLockRelease(&e->mutex);
}

static void
make_key(TiStatsKey *key, Oid dbid, const char *tenant)
{
	memset(key, 0, sizeof(TiStatsKey));
	key->dbid = dbid;
	if (tenant)
		strlcpy(key->tenant, tenant, NAMEDATALEN);
}

static bool
is_null_row(TiTenantStats *e)
{
	return e == shared->other || e->key.tenant[0] == '\0';
}

/*
 * Find or make an entry; NULL when the hash has no room.  The caller holds
 * the lock exclusively.
 */
static TiTenantStats *
enter(const TiStatsKey *key)
{
	bool		found;
	TiTenantStats *e = hash_search(stats_hash, key, HASH_ENTER_NULL, &found);

	if (e != NULL && !found)
	{
		init_entry(e, ti_stats_period_of(GetCurrentTimestamp()));
		if (key->tenant[0] != '\0')
			shared->ntenants++;
	}
	return e;
}

/* The NULL row of database dbid; the caller holds the lock exclusively. */
static TiTenantStats *
null_row_locked(Oid dbid)
{
	TiStatsKey	key;
	TiTenantStats *e;

	make_key(&key, dbid, NULL);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e == NULL)
		e = enter(&key);
	return e ? e : shared->other;
}

/*
 * Fold the least recently active tenant entry that nothing refers to into
 * its database's NULL row and remove it.  The caller holds the lock
 * exclusively.
 */
static bool
evict_one(void)
{
	HASH_SEQ_STATUS seq;
	TiTenantStats *e,
			   *victim = NULL,
			   *o;
	int64		period = ti_stats_period_of(GetCurrentTimestamp());

	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (is_null_row(e) ||
			e->pins > 0 || e->sessions > 0 || e->active > 0 || e->waiting > 0)
			continue;
		if (victim == NULL || e->last_active < victim->last_active)
			victim = e;
	}
	if (victim == NULL)
		return false;

	o = null_row_locked(victim->key.dbid);
	SpinLockAcquire(&victim->mutex);
	ti_stats_rotate(victim, period);
	SpinLockAcquire(&o->mutex);
	ti_stats_rotate(o, period);
	add_counters(&o->cur, &victim->cur);
	add_counters(&o->prev, &victim->prev);
	add_counters(&o->total, &victim->total);
	if (victim->last_active > o->last_active)
		o->last_active = victim->last_active;
	SpinLockRelease(&o->mutex);
	SpinLockRelease(&victim->mutex);
	hash_search(stats_hash, &victim->key, HASH_REMOVE, NULL);
	shared->ntenants--;
	return true;
}

/*
 * The entry of tenant in this database (NULL: the NULL row), pinned.
 * Returns the NULL row when the hash is full of entries in use; *full is
 * then true.
 */
static TiTenantStats *
acquire(const char *tenant, bool *full)
{
	TiStatsKey	key;
	TiTenantStats *e;

	*full = false;
	make_key(&key, MyDatabaseId, tenant);
	LWLockAcquire(shared->lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e)
	{
		pin(e);
		LWLockRelease(shared->lock);
		return e;
	}
	LWLockRelease(shared->lock);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (tenant == NULL)
		e = null_row_locked(MyDatabaseId);
	else
	{
		e = hash_search(stats_hash, &key, HASH_FIND, NULL);
		if (e == NULL)
		{
			if (shared->ntenants < ti_stats_max_tenants || evict_one())
				e = enter(&key);
			if (e == NULL)
			{
				*full = true;
				e = null_row_locked(MyDatabaseId);
			}
		}
	}
	pin(e);
	LWLockRelease(shared->lock);
	return e;
}

static const char *
entry_tenant(TiTenantStats *e)
{
	return is_null_row(e) ? NULL : e->key.tenant;
}

/* the tenant a statement starting now counts for */
static const char *
statement_tenant(void)
{
	if (!IsTransactionState() || !ti_extension_present())
		return NULL;
	return ti_effective_tenant();
}

/*
 * Make session_entry the entry of the current tenant, moving this
 * backend's session count.  Returns it.
 */
static void ensure_backend(void);

/* This backend is in no tenant's context any more: give back its session pin. */
static void
detach_session(void)
{
	if (session_entry == NULL)
		return;
	SpinLockAcquire(&session_entry->mutex);
	session_entry->sessions--;
	session_entry->pins--;
	SpinLockRelease(&session_entry->mutex);
	session_entry = NULL;
}

static TiTenantStats *
attach_current(void)
{
	const char *tenant = statement_tenant();
	TiTenantStats *e;
	bool		full;

	ensure_backend();

	if (session_entry != NULL)
	{
		const char *cur = entry_tenant(session_entry);

		if ((cur == NULL && tenant == NULL) ||
			(cur != NULL && tenant != NULL && strcmp(cur, tenant) == 0))
			return session_entry;
	}
	e = acquire(tenant, &full);
	SpinLockAcquire(&e->mutex);
	e->sessions++;
	SpinLockRelease(&e->mutex);
	detach_session();
	session_entry = e;
	if (full && tenant != NULL)
	{
		const TiLimits *l = ti_limits_for(tenant);

		/* fail closed: a limited tenant we cannot account for may not run */
		if (l->max_active > 0 || l->rate > 0)
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("tenant_iso cannot track another tenant"),
					 errdetail("All %d entries of tenant_iso.stats_max_tenants are in use.",
							   ti_stats_max_tenants),
					 errhint("Raise tenant_iso.stats_max_tenants.")));
	}
	return e;
}

static void
context_changed(bool changed)
{
	if (changed && shared != NULL && !IsParallelWorker())
		(void) attach_current();
}

static bool
active_here(void)
{
	return shared != NULL && !IsParallelWorker() && !IsBinaryUpgrade;
}

static StmtRec *
find_rec(QueryDesc *qd)
{
	/* newest first: a QueryDesc's memory may be reused */
	for (int i = nrecs - 1; i >= 0; i--)
		if (recs[i].qd == qd)
			return &recs[i];
	return NULL;
}

/* ---------------------------------------------------------------------
 * Executor and utility hooks (called from hooks.c)
 * --------------------------------------------------------------------- */

/*
 * A top-level statement starts: attach this backend to its tenant, lower
 * the caps, take a rate-limit token (may wait or raise 53400) and record it.
 */
static StmtRec *
start_statement(QueryDesc *queryDesc)
{
	TiTenantStats *e;
	const char *tenant;
	StmtRec    *rec;

	e = attach_current();
	tenant = entry_tenant(e);
	ti_limits_apply(tenant, true);	/* NULL: the caps of a conflict, if one */
	if (tenant != NULL)
	{
		const TiLimits *l = ti_limits_for(tenant);

		if (l->rate > 0)
			ti_rate_wait(e, tenant, l->rate);
	}
	if (nrecs == maxrecs)
	{
		int			n = maxrecs ? maxrecs * 2 : 8;

		recs = recs ? repalloc(recs, n * sizeof(StmtRec))
			: MemoryContextAlloc(TopMemoryContext, n * sizeof(StmtRec));
		maxrecs = n;
	}
	pin(e);
	rec = &recs[nrecs++];
	rec->qd = queryDesc;
	rec->e = e;
	memset(&rec->acc, 0, sizeof(TiCounters));
	rec->subxid = GetCurrentSubTransactionId();
	return rec;
}

void
ti_stats_executor_start(QueryDesc *queryDesc, bool top)
{
	if (!active_here())
		return;
	if (!top)
	{
		/*
		 * A RESET, or a COMMIT inside a procedure, may have lifted the caps
		 * that the top-level statement set: lower them again before this
		 * nested statement runs.
		 */
		if (IsTransactionState() && ti_extension_present())
			ti_limits_apply(ti_effective_tenant(), false);
		return;
	}
	(void) start_statement(queryDesc);
}

static void
measure_begin(RunState *st)
{
	st->measured = ti_track_stats;
	if (!st->measured)
		return;
	INSTR_TIME_SET_CURRENT(st->t0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &st->cpu0);
	st->bu0 = pgBufferUsage;
	st->wu0 = pgWalUsage;
}

static double
ts_ms(const struct timespec *a, const struct timespec *b)
{
	return (double) (b->tv_sec - a->tv_sec) * 1000.0 +
		(double) (b->tv_nsec - a->tv_nsec) / 1000000.0;
}

static void
measure_end(RunState *st, TiCounters *d)
{
	instr_time	t1;
	struct timespec cpu1;

	memset(d, 0, sizeof(TiCounters));
	if (!st->measured)
		return;
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, st->t0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
	d->exec_time_ms = INSTR_TIME_GET_MILLISEC(t1);
	d->cpu_time_ms = ts_ms(&st->cpu0, &cpu1);
	d->shared_blks_hit = pgBufferUsage.shared_blks_hit - st->bu0.shared_blks_hit;
	d->shared_blks_read = pgBufferUsage.shared_blks_read - st->bu0.shared_blks_read;
	d->temp_blks_written = pgBufferUsage.temp_blks_written - st->bu0.temp_blks_written;
	d->wal_bytes = (int64) (pgWalUsage.wal_bytes - st->wu0.wal_bytes);
}

/*
 * The start of ExecutorRun (is_run) or ExecutorFinish; top when no
 * executor run or counted utility encloses it.  Only the outermost run of a
 * top-level statement is measured and admitted; *state is non-NULL for it,
 * and must be passed to ti_stats_run_end even on error.
 */
void
ti_stats_run_begin(QueryDesc *queryDesc, bool top, bool is_run, void **state)
{
	StmtRec    *rec;
	RunState   *st = &run_state;
	const char *tenant;
	const TiLimits *l;

	*state = NULL;
	/* ExecutorFinish of a plain SELECT has nothing to do: not measured */
	if (!is_run && queryDesc->operation == CMD_SELECT &&
		!queryDesc->plannedstmt->hasModifyingCTE)
		return;
	if (in_run || !active_here())
		return;
	if ((rec = find_rec(queryDesc)) == NULL)
	{
		/*
		 * A portal that nested code opened (a PL/pgSQL cursor) and a
		 * top-level FETCH runs: from now on it is a top-level statement.
		 */
		if (!top || !IsTransactionState())
			return;
		rec = start_statement(queryDesc);
	}
	st->e = rec->e;
	st->rec = rec;
	st->admitted = false;
	st->measured = false;
	st->is_run = is_run;

	/*
	 * Both the run and ExecutorFinish (AFTER triggers, and what they run)
	 * hold a slot while they work.
	 */
	tenant = entry_tenant(rec->e);
	l = tenant ? ti_limits_for(tenant) : NULL;
	if (l != NULL && l->max_active > 0)
		ti_admission_wait(rec->e, tenant);	/* raises, or takes a slot */
	else
	{
		SpinLockAcquire(&rec->e->mutex);
		rec->e->active++;
		SpinLockRelease(&rec->e->mutex);
	}
	st->admitted = true;
	in_run = true;
	measure_begin(st);
	*state = st;
}

void
ti_stats_run_end(QueryDesc *queryDesc, void *state)
{
	RunState   *st = (RunState *) state;
	TiCounters	d;

	if (st == NULL)
		return;
	in_run = false;
	measure_end(st, &d);
	if (st->is_run && queryDesc->estate != NULL && st->measured)
	{
		uint64		n = queryDesc->estate->es_processed;

		if (queryDesc->operation == CMD_SELECT)
			d.rows_read = n;
		else
			d.rows_written = n;
	}
	if (st->measured)
		add_counters(&st->rec->acc, &d);
	if (st->admitted)
		ti_wake_slot(settle(st->e, NULL, 0, -1));
	st->admitted = false;
}

static void
track_query(TiTenantStats *e, uint64 queryid, int64 rows, double ms)
{
	int			n = shared->nqueries;
	int			victim = -1;

	if (n == 0 || queryid == 0)
		return;
	SpinLockAcquire(&e->mutex);
	for (int i = 0; i < e->nqueries; i++)
	{
		if (e->queries[i].queryid == queryid)
		{
			victim = i;
			break;
		}
	}
	if (victim < 0)
	{
		if (e->nqueries < n)
			victim = e->nqueries++;
		else
		{
			/* the query with the least time gives way */
			victim = 0;
			for (int i = 1; i < n; i++)
				if (e->queries[i].exec_time_ms < e->queries[victim].exec_time_ms)
					victim = i;
		}
		e->queries[victim].queryid = queryid;
		e->queries[victim].calls = 0;
		e->queries[victim].rows = 0;
		e->queries[victim].exec_time_ms = 0;
	}
	e->queries[victim].calls++;
	e->queries[victim].rows += rows;
	e->queries[victim].exec_time_ms += ms;
	SpinLockRelease(&e->mutex);
}

void
ti_stats_executor_end(QueryDesc *queryDesc)
{
	StmtRec    *rec;

	if (!active_here() || (rec = find_rec(queryDesc)) == NULL)
		return;
	if (ti_track_stats)
	{
		rec->acc.statements = 1;
		if (ti_track_queries && queryDesc->plannedstmt)
			track_query(rec->e, queryDesc->plannedstmt->queryId,
						rec->acc.rows_read + rec->acc.rows_written,
						rec->acc.exec_time_ms);
	}
	(void) settle(rec->e, ti_track_stats ? &rec->acc : NULL, -1, 0);
	memmove(rec, rec + 1, (recs + nrecs - (rec + 1)) * sizeof(StmtRec));
	nrecs--;
}

/*
 * Around a top-level utility statement; returns the state for _end, or
 * NULL.  With admit, the statement takes an active slot like a query (DO,
 * CALL, EXPLAIN ANALYZE, CREATE TABLE AS, COPY, maintenance commands).
 */
void *
ti_stats_utility_begin(bool admit)
{
	RunState   *st = &run_state;
	TiTenantStats *e;
	const char *tenant;
	const TiLimits *l = NULL;

	if (in_run || !active_here() || !IsTransactionState())
		return NULL;
	e = attach_current();
	tenant = entry_tenant(e);
	ti_limits_apply(tenant, true);	/* NULL: the caps of a conflict, if one */
	if (tenant != NULL)
	{
		l = ti_limits_for(tenant);
		if (l->rate > 0)
			ti_rate_wait(e, tenant, l->rate);
		l = ti_limits_for(tenant);
	}
	if (admit && l != NULL && l->max_active > 0)
		ti_admission_wait(e, tenant);	/* raises, or takes a slot */
	else if (admit)
	{
		SpinLockAcquire(&e->mutex);
		e->active++;
		SpinLockRelease(&e->mutex);
	}
	pin(e);
	st->e = e;
	st->rec = NULL;
	st->admitted = admit;
	st->is_run = false;
	in_run = true;
	measure_begin(st);
	return st;
}

void
ti_stats_utility_end(void *state, bool ok)
{
	RunState   *st = (RunState *) state;
	TiCounters	d;

	if (st == NULL)
		return;
	in_run = false;
	measure_end(st, &d);
	d.statements = ok ? 1 : 0;	/* a failed statement's work counts, it does not */
	ti_wake_slot(settle(st->e, st->measured ? &d : NULL, -1, st->admitted ? -1 : 0));
	st->admitted = false;
}

/* At the end of the top transaction no top-level statement remains. */
static void
stats_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/*
			 * A context entered with local => true ends with the
			 * transaction: this idle backend is in no tenant's context
			 * until its next statement says which.
			 */
			if (ti_context_local_changed_in_xact())
				detach_session();
			/* statements that failed: their work counts, they do not */
			while (nrecs > 0)
			{
				StmtRec    *rec = &recs[--nrecs];

				(void) settle(rec->e, ti_track_stats ? &rec->acc : NULL, -1, 0);
			}
			break;
		default:
			break;
	}
}

/*
 * A subtransaction aborted: the statements that started in it (or in its
 * children, whose ids are larger) failed and will not end.
 */
static void
stats_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (nrecs > 0 && recs[nrecs - 1].subxid >= mySubid)
	{
		StmtRec    *rec = &recs[--nrecs];

		(void) settle(rec->e, ti_track_stats ? &rec->acc : NULL, -1, 0);
	}
}

/* The backend exits: give back everything it holds. */
static void
stats_backend_exit(int code, Datum arg)
{
	if (shared == NULL)
		return;
	if (in_run && run_state.admitted)
	{
		ti_admission_release(run_state.e);
		run_state.admitted = false;
	}
	if (in_run && run_state.rec == NULL)
		unpin(run_state.e);
	in_run = false;
	while (nrecs > 0)
		unpin(recs[--nrecs].e);
	ti_admission_exit();
	detach_session();
}

static bool exit_registered = false;

static void
stats_backend_start(void)
{
	if (!exit_registered)
	{
		before_shmem_exit(stats_backend_exit, (Datum) 0);
		exit_registered = true;
	}
}

void
ti_stats_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = stats_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = stats_shmem_startup;
	RegisterXactCallback(stats_xact_callback, NULL);
	RegisterSubXactCallback(stats_subxact_callback, NULL);
	ti_context_register_callback(context_changed);
}

/*
 * Called before every use in a backend: registers the exit callback once.
 * (A library loaded in the postmaster cannot register it in _PG_init.)
 */
static void
ensure_backend(void)
{
	if (!exit_registered && shared != NULL && MyProc != NULL)
		stats_backend_start();
}

/* ---------------------------------------------------------------------
 * Visibility and the SQL functions
 * --------------------------------------------------------------------- */

/*
 * May the caller see the statistics (or limits) of tenant (NULL: the NULL
 * row)?  In a tenant context only its own; outside, with pg_read_all_stats.
 */
bool
ti_stats_may_see(const char *tenant)
{
	if (ti_in_tenant_context())
	{
		const char *own = ti_effective_tenant();

		return own != NULL && tenant != NULL && strcmp(own, tenant) == 0;
	}
	return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

static void
require_reader(void)
{
	if (!ti_in_tenant_context() && !superuser() &&
		!has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant statistics"),
				 errdetail("Outside a tenant context, only superusers and members of pg_read_all_stats may read them.")));
}

static void
require_shared(void)
{
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_iso statistics are not available"),
				 errhint("tenant_iso must be loaded via shared_preload_libraries.")));
}

#define NCOUNTERS 11
#define STATS_COLS (1 + 3 * NCOUNTERS + 5)

static void
counters_to_values(const TiCounters *c, Datum *v)
{
	v[0] = Int64GetDatum(c->statements);
	v[1] = Int64GetDatum(c->rows_read);
	v[2] = Int64GetDatum(c->rows_written);
	v[3] = Float8GetDatum(c->exec_time_ms);
	v[4] = Float8GetDatum(c->cpu_time_ms);
	v[5] = Int64GetDatum(c->shared_blks_hit);
	v[6] = Int64GetDatum(c->shared_blks_read);
	v[7] = Int64GetDatum(c->temp_blks_written);
	v[8] = Int64GetDatum(c->wal_bytes);
	v[9] = Int64GetDatum(c->throttled);
	v[10] = Int64GetDatum(c->rejected);
}

static void
emit_stats_row(ReturnSetInfo *rsi, TiTenantStats *src, int64 period)
{
	bool		is_other = is_null_row(src);
	TiTenantStats copy;
	Datum		values[STATS_COLS];
	bool		nulls[STATS_COLS];

	SpinLockAcquire(&src->mutex);
	memcpy(&copy, src, offsetof(TiTenantStats, queries));
	SpinLockRelease(&src->mutex);
	ti_stats_rotate(&copy, period);

	memset(nulls, 0, sizeof(nulls));
	if (is_other)
		nulls[0] = true;
	else
		values[0] = CStringGetTextDatum(copy.key.tenant);
	/* each counter: total, current period, previous period */
	{
		Datum		t[NCOUNTERS],
					cu[NCOUNTERS],
					pr[NCOUNTERS];

		counters_to_values(&copy.total, t);
		counters_to_values(&copy.cur, cu);
		counters_to_values(&copy.prev, pr);
		for (int i = 0; i < NCOUNTERS; i++)
		{
			values[1 + 3 * i] = t[i];
			values[2 + 3 * i] = cu[i];
			values[3 + 3 * i] = pr[i];
		}
	}
	values[1 + 3 * NCOUNTERS] = Int32GetDatum(copy.active);
	values[2 + 3 * NCOUNTERS] = Int32GetDatum(copy.sessions);
	if (copy.last_active == 0)
		nulls[3 + 3 * NCOUNTERS] = true;
	else
		values[3 + 3 * NCOUNTERS] = TimestampTzGetDatum(copy.last_active);
	values[4 + 3 * NCOUNTERS] = TimestampTzGetDatum(period * ti_stats_period_s * USECS_PER_SEC);
	values[5 + 3 * NCOUNTERS] = TimestampTzGetDatum(copy.stats_reset);
	tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
}

/*
 * Emit the entries the caller may see: in a tenant context its own entry,
 * else every entry of this database and the overflow row if it was used.
 */
static void
scan_visible(ReturnSetInfo *rsi,
			 void (*emit) (ReturnSetInfo *rsi, TiTenantStats *e, int64 period))
{
	int64		period = ti_stats_period_of(GetCurrentTimestamp());
	bool		in_context = ti_in_tenant_context();
	const char *own = in_context ? ti_effective_tenant() : NULL;
	TiTenantStats *e;

	LWLockAcquire(shared->lock, LW_SHARED);
	if (in_context)
	{
		TiStatsKey	key;

		if (own != NULL)
		{
			make_key(&key, MyDatabaseId, own);
			if ((e = hash_search(stats_hash, &key, HASH_FIND, NULL)) != NULL)
				emit(rsi, e, period);
		}
	}
	else
	{
		HASH_SEQ_STATUS seq;
		bool		used;

		hash_seq_init(&seq, stats_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (e->key.dbid == MyDatabaseId)
				emit(rsi, e, period);
		SpinLockAcquire(&shared->other->mutex);
		used = shared->other->pins > 0 || shared->other->total.statements > 0;
		SpinLockRelease(&shared->other->mutex);
		if (used)
			emit(rsi, shared->other, period);
	}
	LWLockRelease(shared->lock);
}

PG_FUNCTION_INFO_V1(ti_tenant_stats);
Datum
ti_tenant_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;

	require_shared();
	require_reader();
	InitMaterializedSRF(fcinfo, 0);
	if (rsi->setDesc->natts != STATS_COLS)
		elog(ERROR, "tenant_stats: wrong result type");
	scan_visible(rsi, emit_stats_row);
	return (Datum) 0;
}

static void
emit_query_rows(ReturnSetInfo *rsi, TiTenantStats *src, int64 period)
{
	bool		is_other = is_null_row(src);
	int			n = shared->nqueries;
	TiQueryStat *q = palloc(sizeof(TiQueryStat) * Max(n, 1));
	int			nq;
	char		tenant[NAMEDATALEN];

	SpinLockAcquire(&src->mutex);
	nq = src->nqueries;
	memcpy(q, src->queries, sizeof(TiQueryStat) * nq);
	memcpy(tenant, src->key.tenant, NAMEDATALEN);
	SpinLockRelease(&src->mutex);
	for (int i = 0; i < nq; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (is_other)
			nulls[0] = true;
		else
			values[0] = CStringGetTextDatum(tenant);
		values[1] = Int64GetDatum((int64) q[i].queryid);
		values[2] = Int64GetDatum(q[i].calls);
		values[3] = Int64GetDatum(q[i].rows);
		values[4] = Float8GetDatum(q[i].exec_time_ms);
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
	}
	pfree(q);
}

PG_FUNCTION_INFO_V1(ti_tenant_query_stats);
Datum
ti_tenant_query_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;

	require_shared();
	require_reader();
	InitMaterializedSRF(fcinfo, 0);
	scan_visible(rsi, emit_query_rows);
	return (Datum) 0;
}

/* Zero the counters of e (not its live state). */
static void
reset_entry(TiTenantStats *e, TimestampTz now)
{
	SpinLockAcquire(&e->mutex);
	memset(&e->cur, 0, sizeof(TiCounters));
	memset(&e->prev, 0, sizeof(TiCounters));
	memset(&e->total, 0, sizeof(TiCounters));
	e->period = ti_stats_period_of(now);
	e->stats_reset = now;
	e->nqueries = 0;
	SpinLockRelease(&e->mutex);
}

PG_FUNCTION_INFO_V1(ti_reset_tenant_stats);
Datum
ti_reset_tenant_stats(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTimestamp();

	require_shared();
	if (ti_in_tenant_context())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("reset_tenant_stats() cannot be called in a tenant context")));
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (PG_ARGISNULL(0))
	{
		HASH_SEQ_STATUS seq;
		TiTenantStats *e;

		hash_seq_init(&seq, stats_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (e->key.dbid == MyDatabaseId)
				reset_entry(e, now);
		reset_entry(shared->other, now);
	}
	else
	{
		char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
		TiTenantStats *e = NULL;
		TiStatsKey	key;

		if (tenant[0] != '\0' && strlen(tenant) < NAMEDATALEN)
		{
			make_key(&key, MyDatabaseId, tenant);
			e = hash_search(stats_hash, &key, HASH_FIND, NULL);
		}
		if (e)
			reset_entry(e, now);
	}
	LWLockRelease(shared->lock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ti_stats_visible);
Datum
ti_stats_visible(PG_FUNCTION_ARGS)
{
	char	   *tenant = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(ti_stats_may_see(tenant));
}
