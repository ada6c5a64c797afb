/*
 * src/limits.c
 *	  Tenant limits: the cached copy of tenant_iso.limits merged with the
 *	  setting tenant_iso.default_limits, and the caps that limits put on
 *	  statement_timeout, work_mem and temp_file_limit in a tenant context.
 *
 * tenant_iso.limits is a configuration table like the registry's: loaded
 * whole into a backend-local hash on first use after an invalidation, and
 * invalidated by the relcache invalidation that its statement trigger
 * (_config_changed) sends.  A limit changed with set_tenant_limits()
 * therefore applies from every backend's next transaction (and at once to
 * statements waiting for admission, which accept invalidations while they
 * wait).  A column that is NULL in a tenant's row takes the default.
 *
 * The caps.  In a tenant context whose limits cap a setting:
 *	 - the setting is lowered to the limit, with the effect of SET LOCAL
 *	   (ti_limits_apply, before parse analysis and at the start of every
 *	   top-level statement), so that it is back to the session's own value
 *	   after the transaction; statement_timeout's timer is also re-armed
 *	   from the statement's start, since the server armed it before our
 *	   hooks ran;
 *	 - a SET (or set_config(), or a function's SET clause) to a value above
 *	   the limit, or to "no limit", is refused with 42501 by a check hook
 *	   chained onto the built-in setting's own.  RESET and DISCARD bypass
 *	   check hooks; the next statement lowers the value again.
 *	 - set_config(name, NULL, ...) resets a setting without its check hook,
 *	   too: in a tenant context with a cap, parse analysis turns every
 *	   set_config() call into tenant_iso._set_config_capped(), which calls
 *	   it and then lowers the caps again;
 *	 - the settings that multiply a share (hash_mem_multiplier,
 *	   maintenance_work_mem, max_parallel_workers_per_gather,
 *	   max_parallel_maintenance_workers) may be lowered but not raised
 *	   above the session's reset value, in a context with any limit.
 *
 * Elevated paths: none.  The table is read by a direct heap scan, as the
 * registry's are; nothing here runs SQL or resolves names.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "compat.h"
#include "neighbours.h"
#include "tenant_iso.h"

char	   *ti_default_limits = NULL;

static const TiLimits no_limits = {0, 0, 0, -1, 0};
static const TiLimits *default_limits = &no_limits;

/* one tenant's row; unset fields are -2 (rate: NAN) */
typedef struct LimitsEntry
{
	char		tenant[NAMEDATALEN];
	TiLimits	l;
	TimestampTz updated_at;
} LimitsEntry;

#define UNSET (-2)

static bool cache_valid = false;
static Oid	limits_oid = InvalidOid;
static HTAB *limits_hash = NULL;
static MemoryContext limits_cxt = NULL;
static TiLimits merged;

static void
limits_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == limits_oid)
	{
		cache_valid = false;
		if (!OidIsValid(relid))
			limits_oid = InvalidOid;
	}
}

/* a memory or time value with the unit of a built-in setting, or false */
static bool
parse_with_unit(const char *value, int flags, int *out)
{
	const char *hint = NULL;

	return parse_int(value, out, flags, &hint);
}

static void
load_row(HeapTuple tup, TupleDesc desc, LimitsEntry *e)
{
	bool		isnull;
	Datum		d;

	e->l.max_active = UNSET;
	e->l.statement_timeout_ms = UNSET;
	e->l.work_mem_kb = UNSET;
	e->l.temp_file_limit_kb = UNSET;
	e->l.rate = NAN;

	d = heap_getattr(tup, Anum_limits_max_active_statements, desc, &isnull);
	if (!isnull)
		e->l.max_active = DatumGetInt32(d);
	d = heap_getattr(tup, Anum_limits_statement_timeout, desc, &isnull);
	if (!isnull)
	{
		Interval   *iv = DatumGetIntervalP(d);
		double		ms = (iv->time + (double) iv->day * USECS_PER_DAY +
						  (double) iv->month * DAYS_PER_MONTH * USECS_PER_DAY) / 1000.0;

		e->l.statement_timeout_ms = (int) Min(Max(ms, 0), INT_MAX);
	}
	d = heap_getattr(tup, Anum_limits_work_mem, desc, &isnull);
	if (!isnull && !parse_with_unit(TextDatumGetCString(d), GUC_UNIT_KB, &e->l.work_mem_kb))
		e->l.work_mem_kb = UNSET;
	d = heap_getattr(tup, Anum_limits_temp_file_limit, desc, &isnull);
	if (!isnull && !parse_with_unit(TextDatumGetCString(d), GUC_UNIT_KB, &e->l.temp_file_limit_kb))
		e->l.temp_file_limit_kb = UNSET;
	d = heap_getattr(tup, Anum_limits_max_statements_per_second, desc, &isnull);
	if (!isnull)
		e->l.rate = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	d = heap_getattr(tup, Anum_limits_updated_at, desc, &isnull);
	e->updated_at = isnull ? 0 : DatumGetTimestampTz(d);
}

static void
ensure_loaded(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	HASHCTL		ctl;

	if (cache_valid)
		return;
	limits_hash = NULL;
	if (!IsTransactionState() || !ti_extension_present())
		return;
	limits_oid = ti_ext_relid("limits");
	if (!OidIsValid(limits_oid))
		return;					/* 0.1.0's SQL objects: no limits yet */

	if (limits_cxt == NULL)
		limits_cxt = AllocSetContextCreate(TopMemoryContext, "tenant_iso limits",
										   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(limits_cxt);
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(LimitsEntry);
	ctl.hcxt = limits_cxt;
	limits_hash = hash_create("tenant_iso limits", 64, &ctl,
							  HASH_ELEM | HASH_CONTEXT | HASH_STRINGS);

	rel = table_open(limits_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_limits_tenant_id, RelationGetDescr(rel), &isnull);
		char	   *id;
		LimitsEntry *e;

		if (isnull)
			continue;
		id = TextDatumGetCString(d);
		if (strlen(id) >= NAMEDATALEN)
			continue;
		e = hash_search(limits_hash, id, HASH_ENTER, NULL);
		load_row(tup, RelationGetDescr(rel), e);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	cache_valid = true;
}

/* The effective limits of tenant; valid until the next call. */
const TiLimits *
ti_limits_for(const char *tenant)
{
	LimitsEntry *e = NULL;
	const TiLimits *d = default_limits;

	ensure_loaded();
	if (limits_hash != NULL && tenant != NULL && strlen(tenant) < NAMEDATALEN)
		e = hash_search(limits_hash, tenant, HASH_FIND, NULL);
	if (e == NULL)
		return d;
	merged.max_active = e->l.max_active != UNSET ? e->l.max_active : d->max_active;
	merged.statement_timeout_ms = e->l.statement_timeout_ms != UNSET ?
		e->l.statement_timeout_ms : d->statement_timeout_ms;
	merged.work_mem_kb = e->l.work_mem_kb != UNSET ? e->l.work_mem_kb : d->work_mem_kb;
	merged.temp_file_limit_kb = e->l.temp_file_limit_kb != UNSET ?
		e->l.temp_file_limit_kb : d->temp_file_limit_kb;
	merged.rate = !isnan(e->l.rate) ? e->l.rate : d->rate;
	return &merged;
}

/* ---------------------------------------------------------------------
 * tenant_iso.default_limits
 * --------------------------------------------------------------------- */

static bool
parse_default_limits(const char *text, TiLimits *out)
{
	char	   *copy = pstrdup(text);
	char	   *tok,
			   *save = NULL;

	*out = no_limits;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *eq = strchr(tok, '=');
		char	   *key,
				   *val;
		bool		ok;

		if (eq == NULL)
		{
			/* only blanks between commas */
			if (strspn(tok, " \t\n") == strlen(tok))
				continue;
			GUC_check_errdetail("\"%s\" is not name=value.", tok);
			return false;
		}
		*eq = '\0';
		key = tok + strspn(tok, " \t\n");
		while (*key && isspace((unsigned char) key[strlen(key) - 1]))
			key[strlen(key) - 1] = '\0';
		val = eq + 1 + strspn(eq + 1, " \t\n");
		while (*val && isspace((unsigned char) val[strlen(val) - 1]))
			val[strlen(val) - 1] = '\0';

		if (strcmp(key, "max_active_statements") == 0)
			ok = parse_with_unit(val, 0, &out->max_active) && out->max_active >= 0;
		else if (strcmp(key, "statement_timeout") == 0)
			ok = parse_with_unit(val, GUC_UNIT_MS, &out->statement_timeout_ms) &&
				out->statement_timeout_ms >= 0;
		else if (strcmp(key, "work_mem") == 0)
			ok = parse_with_unit(val, GUC_UNIT_KB, &out->work_mem_kb) &&
				out->work_mem_kb >= 64;
		else if (strcmp(key, "temp_file_limit") == 0)
			ok = parse_with_unit(val, GUC_UNIT_KB, &out->temp_file_limit_kb) &&
				out->temp_file_limit_kb >= -1;
		else if (strcmp(key, "max_statements_per_second") == 0)
		{
			char	   *end;

			out->rate = strtod(val, &end);
			ok = end != val && *end == '\0' && out->rate >= 0 && out->rate <= 1e9;
		}
		else
		{
			GUC_check_errdetail("Unknown limit \"%s\"; the limits are max_active_statements, statement_timeout, work_mem, temp_file_limit and max_statements_per_second.", key);
			return false;
		}
		if (!ok)
		{
			GUC_check_errdetail("Invalid value \"%s\" for %s.", val, key);
			return false;
		}
	}
	return true;
}

bool
ti_check_default_limits(char **newval, void **extra, GucSource source)
{
	TiLimits	l;
	TiLimits   *p;

	if (!parse_default_limits(*newval ? *newval : "", &l))
		return false;
	p = ti_guc_malloc(sizeof(TiLimits));
	if (p == NULL)
		return false;
	*p = l;
	*extra = p;
	return true;
}

void
ti_assign_default_limits(const char *newval, void *extra)
{
	default_limits = extra ? (const TiLimits *) extra : &no_limits;
}

/* ---------------------------------------------------------------------
 * The caps
 * --------------------------------------------------------------------- */

static bool applying = false;

static void
set_local_text(const char *name, const char *buf)
{
	applying = true;
	PG_TRY();
	{
		(void) set_config_option(name, buf, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	}
	PG_FINALLY();
	{
		applying = false;
	}
	PG_END_TRY();
}

static void
set_local(const char *name, int value, const char *unit)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d%s", value, unit);
	set_local_text(name, buf);
}

static void lower_held_settings(void);

static int
stricter(int a, int b, int none)
{
	if (a == none)
		return b;
	if (b == none)
		return a;
	return Min(a, b);
}

/*
 * The limits of the current context: its tenant's (tenant, when not NULL),
 * or, in a conflicting context (a member role of one tenant acting with
 * another's), the stricter of the two tenants' caps, so that a conflict
 * never lifts them (its statements count for the NULL row and are neither
 * admitted nor rate-limited).  NULL outside any context.
 */
static const TiLimits *
context_limits(const char *tenant)
{
	static TiLimits strict;
	const char *a,
			   *b;
	TiLimits	la,
				lb;

	if (tenant != NULL)
		return ti_limits_for(tenant);
	if (!ti_extension_present() || !ti_context_conflict(&a, &b))
		return NULL;
	la = *ti_limits_for(a);
	lb = *ti_limits_for(b);
	strict = no_limits;
	strict.work_mem_kb = stricter(la.work_mem_kb, lb.work_mem_kb, 0);
	strict.statement_timeout_ms = stricter(la.statement_timeout_ms, lb.statement_timeout_ms, 0);
	strict.temp_file_limit_kb = stricter(la.temp_file_limit_kb, lb.temp_file_limit_kb, -1);
	return &strict;
}

/*
 * Lower the capped settings of tenant's context to its limits.  At the top
 * level (a statement starts) also arm statement_timeout from the
 * statement's start; a nested statement never re-arms it, so that a
 * timeout caught by an exception handler fires once, as the server's own.
 */
void
ti_limits_apply(const char *tenant, bool top)
{
	const TiLimits *l;

	if (IsParallelWorker() || !IsTransactionState() ||
		(l = context_limits(tenant)) == NULL)
		return;
	if (l->max_active > 0 || l->statement_timeout_ms > 0 || l->work_mem_kb > 0 ||
		l->temp_file_limit_kb >= 0 || l->rate > 0)
		lower_held_settings();
	if (l->work_mem_kb > 0 && work_mem > l->work_mem_kb)
		set_local("work_mem", l->work_mem_kb, "kB");
	if (l->temp_file_limit_kb >= 0 &&
		(temp_file_limit < 0 || temp_file_limit > l->temp_file_limit_kb))
		set_local("temp_file_limit", l->temp_file_limit_kb, "kB");
	if (l->statement_timeout_ms > 0)
	{
		TimestampTz deadline;

		if (StatementTimeout == 0 || StatementTimeout > l->statement_timeout_ms)
			set_local("statement_timeout", l->statement_timeout_ms, "ms");
		if (!top)
			return;
		deadline = TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
											   l->statement_timeout_ms);
		if (!get_timeout_active(STATEMENT_TIMEOUT) ||
			get_timeout_finish_time(STATEMENT_TIMEOUT) > deadline)
			enable_timeout_at(STATEMENT_TIMEOUT, deadline);
	}
}

typedef enum
{
	CAP_WORK_MEM,
	CAP_STATEMENT_TIMEOUT,
	CAP_TEMP_FILE_LIMIT,
	CAP_COUNT
} CapKind;

static const char *const cap_names[CAP_COUNT] = {
	"work_mem", "statement_timeout", "temp_file_limit"
};
static GucIntCheckHook prev_cap_hook[CAP_COUNT];

/*
 * The limits that a check hook enforces now: those of the current context
 * (context_limits), or NULL when there are none or they cannot be known
 * here (our own lowering, a parallel worker, no transaction).
 */
static const TiLimits *
hook_limits(void)
{
	if (applying || IsParallelWorker() || InitializingParallelWorker ||
		!IsTransactionState() || !ti_extension_present())
		return NULL;
	return context_limits(ti_effective_tenant());
}

/* the limit on the setting, or false when there is none here */
static bool
cap_limit(CapKind kind, int *limit)
{
	const TiLimits *l = hook_limits();

	if (l == NULL)
		return false;
	switch (kind)
	{
		case CAP_WORK_MEM:
			*limit = l->work_mem_kb;
			return l->work_mem_kb > 0;
		case CAP_STATEMENT_TIMEOUT:
			*limit = l->statement_timeout_ms;
			return l->statement_timeout_ms > 0;
		case CAP_TEMP_FILE_LIMIT:
			*limit = l->temp_file_limit_kb;
			return l->temp_file_limit_kb >= 0;
		default:
			return false;
	}
}

static bool
check_cap(CapKind kind, int *newval, void **extra, GucSource source)
{
	int			limit;
	bool		above;

	if (prev_cap_hook[kind] && !prev_cap_hook[kind] (newval, extra, source))
		return false;
	if (source != PGC_S_SESSION || !cap_limit(kind, &limit))
		return true;
	if (kind == CAP_WORK_MEM)
		above = *newval > limit;
	else if (kind == CAP_STATEMENT_TIMEOUT)
		above = *newval == 0 || *newval > limit;
	else
		above = *newval < 0 || *newval > limit;
	if (!above)
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("%s cannot be raised above the tenant's limit", cap_names[kind]);
	GUC_check_errdetail("The limit is %d%s.", limit,
						kind == CAP_STATEMENT_TIMEOUT ? "ms" : "kB");
	return false;
}

static bool
check_work_mem(int *newval, void **extra, GucSource source)
{
	return check_cap(CAP_WORK_MEM, newval, extra, source);
}

static bool
check_statement_timeout(int *newval, void **extra, GucSource source)
{
	return check_cap(CAP_STATEMENT_TIMEOUT, newval, extra, source);
}

static bool
check_temp_file_limit(int *newval, void **extra, GucSource source)
{
	return check_cap(CAP_TEMP_FILE_LIMIT, newval, extra, source);
}

/*
 * Settings that multiply a tenant's share: memory per hash table and per
 * maintenance operation, cores per statement.  In a tenant context with any
 * limit, a SET may lower them but not raise them above the session's reset
 * value (postgresql.conf, the role's and database's settings).
 */
typedef enum
{
	HELD_HASH_MEM_MULTIPLIER,
	HELD_MAINTENANCE_WORK_MEM,
	HELD_PARALLEL_WORKERS,
	HELD_PARALLEL_MAINTENANCE_WORKERS,
	HELD_COUNT
} HeldKind;

static const char *const held_names[HELD_COUNT] = {
	"hash_mem_multiplier", "maintenance_work_mem",
	"max_parallel_workers_per_gather", "max_parallel_maintenance_workers"
};
static struct config_generic *held_gucs[HELD_COUNT];
static GucIntCheckHook prev_held_int[HELD_COUNT];
static GucRealCheckHook prev_held_real;

static bool
tenant_has_limits(void)
{
	const TiLimits *l = hook_limits();

	if (l == NULL)
		return false;
	return l->max_active > 0 || l->statement_timeout_ms > 0 || l->work_mem_kb > 0 ||
		l->temp_file_limit_kb >= 0 || l->rate > 0;
}

/*
 * In a context with limits, the held settings go back to the session's
 * reset value when the session raised them (before it entered the context),
 * with the effect of SET LOCAL.
 */
static void
lower_held_settings(void)
{
	char		buf[64];

	for (int i = 0; i < HELD_COUNT; i++)
	{
		struct config_generic *g = held_gucs[i];

		if (g == NULL)
			continue;
		if (g->vartype == PGC_REAL)
		{
			struct config_real *r = (struct config_real *) g;

			if (*r->variable <= r->reset_val)
				continue;
			snprintf(buf, sizeof(buf), "%.17g", r->reset_val);
		}
		else
		{
			struct config_int *n = (struct config_int *) g;

			if (*n->variable <= n->reset_val)
				continue;
			snprintf(buf, sizeof(buf), "%d", n->reset_val);
		}
		set_local_text(held_names[i], buf);
	}
}

static bool
refuse_raise(HeldKind kind)
{
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("%s cannot be raised in a tenant context with limits", held_names[kind]);
	GUC_check_errdetail("It may be lowered, but not set above the session's reset value.");
	return false;
}

static bool
check_held_int(HeldKind kind, int *newval, void **extra, GucSource source)
{
	if (prev_held_int[kind] && !prev_held_int[kind] (newval, extra, source))
		return false;
	if (source != PGC_S_SESSION || held_gucs[kind] == NULL ||
		*newval <= ((struct config_int *) held_gucs[kind])->reset_val ||
		!tenant_has_limits())
		return true;
	return refuse_raise(kind);
}

static bool
check_hash_mem_multiplier(double *newval, void **extra, GucSource source)
{
	struct config_generic *g = held_gucs[HELD_HASH_MEM_MULTIPLIER];

	if (prev_held_real && !prev_held_real(newval, extra, source))
		return false;
	if (source != PGC_S_SESSION || g == NULL ||
		*newval <= ((struct config_real *) g)->reset_val || !tenant_has_limits())
		return true;
	return refuse_raise(HELD_HASH_MEM_MULTIPLIER);
}

static bool
check_maintenance_work_mem(int *newval, void **extra, GucSource source)
{
	return check_held_int(HELD_MAINTENANCE_WORK_MEM, newval, extra, source);
}

static bool
check_parallel_workers(int *newval, void **extra, GucSource source)
{
	return check_held_int(HELD_PARALLEL_WORKERS, newval, extra, source);
}

static bool
check_parallel_maintenance_workers(int *newval, void **extra, GucSource source)
{
	return check_held_int(HELD_PARALLEL_MAINTENANCE_WORKERS, newval, extra, source);
}

static void
hold_settings(void)
{
	GucIntCheckHook int_hooks[HELD_COUNT] = {
		NULL, check_maintenance_work_mem, check_parallel_workers,
		check_parallel_maintenance_workers
	};

	for (int i = 0; i < HELD_COUNT; i++)
	{
		struct config_generic *g = ti_find_guc(held_names[i]);

		if (g == NULL ||
			g->vartype != (i == HELD_HASH_MEM_MULTIPLIER ? PGC_REAL : PGC_INT))
			elog(ERROR, "tenant_iso: setting \"%s\" not found", held_names[i]);
		held_gucs[i] = g;
		if (i == HELD_HASH_MEM_MULTIPLIER)
		{
			prev_held_real = ((struct config_real *) g)->check_hook;
			((struct config_real *) g)->check_hook = check_hash_mem_multiplier;
		}
		else
		{
			prev_held_int[i] = ((struct config_int *) g)->check_hook;
			((struct config_int *) g)->check_hook = int_hooks[i];
		}
	}
}

void
ti_limits_init(void)
{
	GucIntCheckHook hooks[CAP_COUNT] = {
		check_work_mem, check_statement_timeout, check_temp_file_limit
	};

	CacheRegisterRelcacheCallback(limits_relcache_cb, (Datum) 0);
	for (int i = 0; i < CAP_COUNT; i++)
	{
		struct config_generic *g = ti_find_guc(cap_names[i]);

		if (g == NULL || g->vartype != PGC_INT)
			elog(ERROR, "tenant_iso: setting \"%s\" not found", cap_names[i]);
		prev_cap_hook[i] = ((struct config_int *) g)->check_hook;
		((struct config_int *) g)->check_hook = hooks[i];
	}
	hold_settings();
}

/* '64MB' for 65536 kB, as _memory_limit() writes limits */
static text *
memory_text(int kb)
{
	if (kb > 0 && kb % (1024 * 1024) == 0)
		return cstring_to_text(psprintf("%dGB", kb / (1024 * 1024)));
	if (kb > 0 && kb % 1024 == 0)
		return cstring_to_text(psprintf("%dMB", kb / 1024));
	return cstring_to_text(psprintf("%dkB", kb));
}

PG_FUNCTION_INFO_V1(ti_default_limits_row);
Datum
ti_default_limits_row(PG_FUNCTION_ARGS)
{
	const TiLimits *d = default_limits;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {true, true, true, true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_default_limits: wrong result type");
	desc = BlessTupleDesc(desc);
	if (d->max_active > 0)
	{
		values[0] = Int32GetDatum(d->max_active);
		nulls[0] = false;
	}
	if (d->statement_timeout_ms > 0)
	{
		Interval   *iv = palloc0(sizeof(Interval));

		iv->time = (int64) d->statement_timeout_ms * 1000;
		values[1] = IntervalPGetDatum(iv);
		nulls[1] = false;
	}
	if (d->work_mem_kb > 0)
	{
		values[2] = PointerGetDatum(memory_text(d->work_mem_kb));
		nulls[2] = false;
	}
	if (d->temp_file_limit_kb >= 0)
	{
		values[3] = PointerGetDatum(memory_text(d->temp_file_limit_kb));
		nulls[3] = false;
	}
	if (d->rate > 0)
	{
		values[4] = DirectFunctionCall1(float8_numeric, Float8GetDatum(d->rate));
		nulls[4] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* ---------------------------------------------------------------------
 * set_config() in a capped context
 * --------------------------------------------------------------------- */

static bool
has_caps(const char *tenant)
{
	const TiLimits *l = context_limits(tenant);

	if (l == NULL)
		return false;
	return l->work_mem_kb > 0 || l->statement_timeout_ms > 0 || l->temp_file_limit_kb >= 0;
}

static Oid
capped_set_config_oid(void)
{
	static Oid	oid = InvalidOid;
	static uint64 gen = 0;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, BOOLOID};

	if (gen != ti_registry_generation() || !OidIsValid(oid))
	{
		oid = LookupFuncName(ti_qualified_name_list("tenant_iso._set_config_capped"),
							 3, argtypes, true);
		gen = ti_registry_generation();
	}
	return oid;
}

static bool
redirect_set_config(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_SET_CONFIG)
		((FuncExpr *) node)->funcid = *(Oid *) context;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, redirect_set_config, context, 0);
	return expression_tree_walker(node, redirect_set_config, context);
}

void
ti_limits_post_parse(Query *query)
{
	Oid			wrapper;

	if (query->commandType == CMD_UTILITY || !IsTransactionState() ||
		!ti_extension_present() || !has_caps(ti_effective_tenant()))
		return;
	wrapper = capped_set_config_oid();
	if (OidIsValid(wrapper))
		(void) query_tree_walker(query, redirect_set_config, &wrapper, 0);
}

PG_FUNCTION_INFO_V1(ti_set_config_capped);
Datum
ti_set_config_capped(PG_FUNCTION_ARGS)
{
	Datum		result = set_config_by_name(fcinfo);

	if (IsTransactionState() && ti_extension_present())
	{
		ti_limits_apply(ti_effective_tenant(), false);
		/* like set_config(), return the value now in effect */
		result = CStringGetTextDatum(GetConfigOptionByName(TextDatumGetCString(PG_GETARG_DATUM(0)),
														   NULL, false));
	}
	return result;
}

/* ---------------------------------------------------------------------
 * The view tenant_limits
 * --------------------------------------------------------------------- */

static Datum
interval_ms(int ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (int64) ms * 1000;
	return IntervalPGetDatum(iv);
}

static Datum
memory_or_none(int kb)
{
	return kb < 0 ? CStringGetTextDatum("-1") : PointerGetDatum(memory_text(kb));
}

/*
 * One row per registered tenant the caller may see (in a tenant context
 * only its own; outside, with pg_read_all_stats), filtered here rather than
 * in a view's qual, so that no plan shows how many rows it passed over.
 * A value is the tenant's own when it set one, else the default; NULL when
 * neither limits it.
 */
PG_FUNCTION_INFO_V1(ti_tenant_limits_rows);
Datum
ti_tenant_limits_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	const TiLimits *d = default_limits;
	Oid			tenants_oid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	InitMaterializedSRF(fcinfo, 0);
	if (!ti_extension_present() || !OidIsValid(tenants_oid = ti_ext_relid("tenants")))
		return (Datum) 0;
	ensure_loaded();
	rel = table_open(tenants_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		id = heap_getattr(tup, Anum_tenants_tenant_id_col, RelationGetDescr(rel), &isnull);
		char	   *tenant;
		LimitsEntry *e = NULL;
		TiLimits	own;
		Datum		values[8];
		bool		nulls[8];

		if (isnull)
			continue;
		tenant = TextDatumGetCString(id);
		if (strlen(tenant) >= NAMEDATALEN || !ti_stats_may_see(tenant))
			continue;
		if (limits_hash != NULL)
			e = hash_search(limits_hash, tenant, HASH_FIND, NULL);
		own = e ? e->l : (TiLimits) {UNSET, UNSET, UNSET, UNSET, NAN};
		memset(nulls, true, sizeof(nulls));
		values[0] = CStringGetTextDatum(tenant);
		nulls[0] = false;
		if (own.max_active != UNSET || d->max_active > 0)
		{
			values[1] = Int32GetDatum(own.max_active != UNSET ? own.max_active : d->max_active);
			nulls[1] = false;
		}
		if (own.statement_timeout_ms != UNSET || d->statement_timeout_ms > 0)
		{
			values[2] = interval_ms(own.statement_timeout_ms != UNSET ?
									own.statement_timeout_ms : d->statement_timeout_ms);
			nulls[2] = false;
		}
		if (own.work_mem_kb != UNSET || d->work_mem_kb > 0)
		{
			values[3] = memory_or_none(own.work_mem_kb != UNSET ? own.work_mem_kb : d->work_mem_kb);
			nulls[3] = false;
		}
		if (own.temp_file_limit_kb != UNSET || d->temp_file_limit_kb >= 0)
		{
			values[4] = memory_or_none(own.temp_file_limit_kb != UNSET ?
									   own.temp_file_limit_kb : d->temp_file_limit_kb);
			nulls[4] = false;
		}
		if (!isnan(own.rate) || d->rate > 0)
		{
			values[5] = DirectFunctionCall1(float8_numeric,
											Float8GetDatum(!isnan(own.rate) ? own.rate : d->rate));
			nulls[5] = false;
		}
		values[6] = BoolGetDatum(e != NULL);
		nulls[6] = false;
		if (e != NULL && e->updated_at != 0)
		{
			values[7] = TimestampTzGetDatum(e->updated_at);
			nulls[7] = false;
		}
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, values, nulls);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}
