/*
 * src/guc.c
 *	  Every setting of tenant_iso, defined in one place.  ti_guc_init() runs
 *	  first in _PG_init; the check and assign hooks live with the subsystem
 *	  whose state they guard (context.c, masterkey.c, tokenkeys.c) and are
 *	  only registered here.
 *
 * Anything that touches security is PGC_SUSET or stricter; the master key
 * commands are PGC_SIGHUP and GUC_SUPERUSER_ONLY.  The prefix is closed by
 * MarkGUCPrefixReserved("tenant_iso") at the end of _PG_init.
 *
 * The validate() settings (tenant_columns, key_max_age, verify_max_age) are
 * read only by the SECURITY DEFINER SQL functions validate() and drift()
 * (run as the extension owner, SET search_path = pg_catalog, pg_temp)
 * through current_setting(); C never reads them.
 *
 * Elevated paths: none.  Defining a setting resolves no SQL names.
 */
#include "postgres.h"

#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "neighbours.h"
#include "tenant_iso.h"

/* context.c */
char	   *ti_context_guc = NULL;
bool		ti_log_context_changes = false;

/* masterkey.c */
char	   *ti_master_key_command = NULL;
char	   *ti_previous_master_key_command = NULL;

/* tokenkeys.c */
char	   *ti_token_audience_setting = NULL;
char	   *ti_token_max_ttl_text = NULL;

/* planner.c */
bool		ti_hide_statistics = true;

/* residue.c */
bool		ti_discard_temp_on_switch = false;

/* history.c */
char	   *ti_history_retention = NULL;
char	   *ti_history_purge_interval = NULL;
char	   *ti_history_purge_databases = NULL;

/* monitor.c, peer.c */
char	   *ti_monitor_databases = NULL;
int			ti_verify_interval = 300;
int			ti_max_auto_repair_rows = 1000;
char	   *ti_peer_password_command = NULL;
char	   *ti_monitor_conninfo = NULL;

/* validate() */
char	   *ti_tenant_columns = NULL;
char	   *ti_key_max_age = NULL;
char	   *ti_verify_max_age = NULL;

/*
 * An interval's length in microseconds (a month counts 30 days), without
 * raising: false when the text is not an interval or is out of range.
 */
bool
ti_parse_interval_usecs(const char *text, int64 *usecs)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_itm_in itm;
	Interval	span;

	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm) != 0 ||
		dtype != DTK_DELTA || itmin2interval(&itm, &span) != 0)
		return false;
	if (span.month > 1200 || span.month < -1200 || span.day > 36600 || span.day < -36600)
		return false;
	*usecs = span.time + (int64) span.day * USECS_PER_DAY +
		(int64) span.month * DAYS_PER_MONTH * USECS_PER_DAY;
	return true;
}

/* An interval setting: empty, or an interval that is not negative. */
bool
ti_check_interval_setting(char **newval, void **extra, GucSource source)
{
	int64		usecs;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!ti_parse_interval_usecs(*newval, &usecs))
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		return false;
	}
	if (usecs < 0)
	{
		GUC_check_errdetail("The interval must not be negative.");
		return false;
	}
	return true;
}

void
ti_guc_init(void)
{
	/* the master key */
	DefineCustomStringVariable("tenant_iso.master_key_command",
							   "Command that prints the 64-hex-digit master key.",
							   "The key is read when it is needed and never stored in the database.",
							   &ti_master_key_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, ti_assign_master_key_command, NULL);
	DefineCustomStringVariable("tenant_iso.previous_master_key_command",
							   "Command that prints the previous master key, used only by rewrap_keys().",
							   NULL,
							   &ti_previous_master_key_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	/* the tenant context */
	DefineCustomStringVariable(TI_CONTEXT_GUC,
							   "Tenant context entered by a switcher or a token (read-only; use set_tenant).",
							   NULL,
							   &ti_context_guc,
							   "",
							   PGC_USERSET,
							   GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   ti_check_context, ti_assign_context, NULL);
	DefineCustomBoolVariable("tenant_iso.log_context_changes",
							 "Log every successful change of tenant context.",
							 NULL,
							 &ti_log_context_changes,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/* tokens */
	DefineCustomStringVariable("tenant_iso.token_audience",
							   "Audience that tokens are issued for and accepted in (empty: this cluster and database).",
							   "Clusters and databases with the same non-empty value accept each other's tokens.",
							   &ti_token_audience_setting,
							   "",
							   PGC_SUSET,
							   0,
							   ti_check_audience, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.token_max_ttl",
							   "Longest lifetime of a token from issue_token().",
							   "Tokens older than this are refused even before their expiry.",
							   &ti_token_max_ttl_text,
							   "1 day",
							   PGC_SUSET,
							   0,
							   ti_check_max_ttl, ti_assign_max_ttl, NULL);

	/* isolation: temporary-object residue and planner statistics */
	DefineCustomBoolVariable("tenant_iso.discard_temp_on_switch",
							 "Drop every temporary object of the session when set_tenant(), set_tenant_token() or reset_tenant() change the tenant context.",
							 NULL,
							 &ti_discard_temp_on_switch,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("tenant_iso.hide_statistics",
							 "Withholds value-bearing statistics of protected tables from the planner in a tenant context.",
							 "MCV lists and histograms would let a tenant probe another tenant's values through EXPLAIN row estimates.",
							 &ti_hide_statistics,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/* history (self-service restore) */
	DefineCustomStringVariable("tenant_iso.history_retention",
							   "How long row history is kept, unless a table or tenant sets its own retention.",
							   NULL,
							   &ti_history_retention,
							   "30 days",
							   PGC_SUSET,
							   0,
							   ti_check_interval_setting, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.history_purge_interval",
							   "How often the purge worker runs purge_history(); 0 or empty for never.",
							   NULL,
							   &ti_history_purge_interval,
							   "1 hour",
							   PGC_SIGHUP,
							   0,
							   ti_check_interval_setting, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.history_purge_databases",
							   "Databases (comma-separated) in which a background worker purges row history.",
							   NULL,
							   &ti_history_purge_databases,
							   "",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	/* the integrity monitor (monitor.c, 85_monitor.sql) and its peers (peer.c) */
	DefineCustomStringVariable("tenant_iso.monitor_databases",
							   "Databases (comma-separated) in which the integrity monitor runs.",
							   "One background worker per database, started with the server, also on a hot standby.",
							   &ti_monitor_databases,
							   "",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_iso.verify_interval",
							"Time between two runs of the integrity monitor.",
							NULL,
							&ti_verify_interval,
							300, 1, INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_iso.max_auto_repair_rows",
							"Most rows the integrity monitor repairs per tenant and table in one run.",
							"A larger divergence is quarantined for an operator.",
							&ti_max_auto_repair_rows,
							1000, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.peer_password_command",
							   "Shell command that prints the password for a peer connection (%h %p %u %d: its host, port, user, database).",
							   "Used for superusers' peer connections whose connection string has no password.",
							   &ti_peer_password_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.monitor_conninfo",
							   "Connection string by which the peers reach this node (without a password).",
							   "Empty: this server's loopback address, port and database.",
							   &ti_monitor_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	/* noisy neighbours: statistics (stats.c) */
	DefineCustomBoolVariable("tenant_iso.track_stats",
							 "Collects per-tenant statistics (the view tenant_iso.tenant_stats).",
							 "Limits are enforced even when this is off.",
							 &ti_track_stats,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_iso.stats_max_tenants",
							"Number of tenants whose statistics are kept in shared memory.",
							"Beyond it, the least recently active tenant's counters fold into the row tenant = NULL.",
							&ti_stats_max_tenants,
							10000, 10, 10000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_iso.stats_period",
							"Length of a statistics period (the _current and _previous columns of tenant_stats).",
							NULL,
							&ti_stats_period_s,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("tenant_iso.track_queries",
							 "Keeps each tenant's top queries by queryid (the view tenant_iso.tenant_query_stats).",
							 NULL,
							 &ti_track_queries,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_iso.stats_queries_per_tenant",
							"Number of queries kept per tenant when tenant_iso.track_queries is on.",
							NULL,
							&ti_stats_queries_per_tenant,
							20, 1, 1000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	/* noisy neighbours: limits (limits.c, admission.c) */
	DefineCustomStringVariable("tenant_iso.default_limits",
							   "Limits of tenants without their own (set_tenant_limits), as name=value pairs.",
							   "For example 'max_active_statements=4, statement_timeout=30s, work_mem=64MB, temp_file_limit=1GB, max_statements_per_second=100'.",
							   &ti_default_limits,
							   "",
							   PGC_SIGHUP,
							   0,
							   ti_check_default_limits, ti_assign_default_limits, NULL);
	DefineCustomIntVariable("tenant_iso.admission_timeout",
							"Longest wait of a statement for admission or a rate-limit token.",
							NULL,
							&ti_admission_timeout_ms,
							10000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* validate() and drift() */
	DefineCustomStringVariable("tenant_iso.tenant_columns",
							   "Comma-separated column names that mark a table as holding tenant data.",
							   "validate() reports tables in user schemas with such a column that are not protected.",
							   &ti_tenant_columns,
							   "tenant_id",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.key_max_age",
							   "Age (an interval) after which validate() reports a tenant data key; empty for none.",
							   NULL,
							   &ti_key_max_age,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tenant_iso.verify_max_age",
							   "Age (an interval) after which validate() reports a tracked table that verify() has not checked.",
							   NULL,
							   &ti_verify_max_age,
							   "7 days",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}
