/*
 * src/neighbours.h
 *	  Noisy neighbours: per-tenant statistics in shared memory (stats.c),
 *	  admission and rate waits (admission.c) and the tenant limits with the
 *	  setting caps they impose (limits.c).
 *
 * One shared hash holds an entry per database and tenant (at most
 * tenant_iso.stats_max_tenants of them), plus one entry per database for
 * the statements run outside any tenant context and the counters of
 * evicted tenants (the row tenant = NULL).  An entry is evicted only when
 * nothing refers to it: no session in its context, no statement of it
 * running or waiting.  NULL rows are never evicted; when no room is left
 * for a database's NULL row, one more entry outside the hash (the overflow
 * row, shown in every database) takes its counts.
 */
#ifndef TI_NEIGHBOURS_H
#define TI_NEIGHBOURS_H

#include "postgres.h"

#include "executor/execdesc.h"
#include "nodes/parsenodes.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

/* the counters kept per period (current, previous) and in total */
typedef struct TiCounters
{
	int64		statements;
	int64		rows_read;
	int64		rows_written;
	double		exec_time_ms;
	double		cpu_time_ms;
	int64		shared_blks_hit;
	int64		shared_blks_read;
	int64		temp_blks_written;
	int64		wal_bytes;
	int64		throttled;
	int64		rejected;
} TiCounters;

typedef struct TiQueryStat
{
	uint64		queryid;
	int64		calls;
	int64		rows;
	double		exec_time_ms;
} TiQueryStat;

/* an entry's hash key: tenant ids are per database */
typedef struct TiStatsKey
{
	Oid			dbid;
	char		tenant[NAMEDATALEN];	/* "" for the database's NULL row */
} TiStatsKey;

typedef struct TiTenantStats
{
	TiStatsKey	key;			/* hash key */
	slock_t		mutex;			/* protects everything below */
	int64		period;			/* the period number of cur */
	TiCounters	cur;
	TiCounters	prev;
	TiCounters	total;
	TimestampTz last_active;
	TimestampTz stats_reset;
	int			pins;			/* references from backends (sessions, statements) */
	int			sessions;		/* backends in this tenant's context */
	int			active;			/* statements running (admitted) */
	int			waiting;		/* statements waiting for admission or rate */
	int			wait_head;		/* FIFO of waiting backends (slot numbers), -1 if empty */
	int			wait_tail;
	double		tokens;			/* rate limit bucket */
	TimestampTz bucket_at;		/* 0: never used (full) */
	int64		logged_period;	/* the period of the last overload LOG line */
	int			nqueries;
	TiQueryStat queries[FLEXIBLE_ARRAY_MEMBER];
} TiTenantStats;

/* the effective limits of one tenant (0 or -1: none) */
typedef struct TiLimits
{
	int			max_active;		/* 0: none */
	int			statement_timeout_ms;	/* 0: none */
	int			work_mem_kb;	/* 0: none */
	int			temp_file_limit_kb; /* -1: none */
	double		rate;			/* statements per second, 0: none */
} TiLimits;

/* stats.c */
extern int	ti_stats_max_tenants;
extern int	ti_stats_period_s;
extern bool ti_track_stats;
extern bool ti_track_queries;
extern int	ti_stats_queries_per_tenant;
extern void ti_stats_init(void);
extern void ti_stats_executor_start(QueryDesc *queryDesc, bool top);
extern void ti_stats_run_begin(QueryDesc *queryDesc, bool top, bool is_run, void **state);
extern void ti_stats_run_end(QueryDesc *queryDesc, void *state);
extern void ti_stats_executor_end(QueryDesc *queryDesc);
extern void *ti_stats_utility_begin(bool admit);
extern void ti_stats_utility_end(void *state, bool ok);
extern int64 ti_stats_period_of(TimestampTz now);
extern void ti_stats_rotate(TiTenantStats *e, int64 period);
extern bool ti_stats_may_see(const char *tenant);

/* admission.c: wait for a slot or a token; raise 53300 / 53400 */
extern int	ti_admission_timeout_ms;
extern int	ti_my_slot(void);
extern void ti_admission_wait(TiTenantStats *e, const char *tenant);
extern void ti_rate_wait(TiTenantStats *e, const char *tenant, double rate);
extern void ti_admission_release(TiTenantStats *e);
extern void ti_admission_dequeue(TiTenantStats *e);
extern void ti_admission_exit(void);
extern void ti_wake_slot(int slot);
extern void ti_overload_log(TiTenantStats *e, const char *tenant, const char *what);

/* the shared slot array, one per PGPROC (stats.c owns it) */
typedef struct TiSlot
{
	int			next;			/* next in the wait FIFO, -1 */
	TiTenantStats *queued_on;	/* the entry whose FIFO holds us, or NULL */
} TiSlot;
extern TiSlot *ti_slots;
extern int	ti_nslots;

/* limits.c */
extern char *ti_default_limits;
extern const TiLimits *ti_limits_for(const char *tenant);
extern void ti_limits_init(void);
extern void ti_limits_apply(const char *tenant, bool top);
extern void ti_limits_post_parse(Query *query);
extern bool ti_check_default_limits(char **newval, void **extra, GucSource source);
extern void ti_assign_default_limits(const char *newval, void *extra);

#endif
