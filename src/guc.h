/*
 * src/guc.h
 *	  The settings of tenant_iso (all defined in guc.c) and the check and
 *	  assign hooks that guc.c registers on behalf of their subsystems.
 */
#ifndef TI_GUC_H
#define TI_GUC_H

#include "utils/guc.h"

extern void ti_guc_init(void);

/* context.c: the hidden tenant_iso.tenant (TI_CONTEXT_GUC) */
extern char *ti_context_guc;
extern bool ti_log_context_changes;
extern bool ti_check_context(char **newval, void **extra, GucSource source);
extern void ti_assign_context(const char *newval, void *extra);

/* masterkey.c */
extern char *ti_master_key_command;
extern char *ti_previous_master_key_command;
extern void ti_assign_master_key_command(const char *newval, void *extra);

/* tokenkeys.c */
extern char *ti_token_audience_setting;
extern char *ti_token_max_ttl_text;
extern bool ti_check_audience(char **newval, void **extra, GucSource source);
extern bool ti_check_max_ttl(char **newval, void **extra, GucSource source);
extern void ti_assign_max_ttl(const char *newval, void *extra);

/* planner.c */
extern bool ti_hide_statistics;

/* residue.c */
extern bool ti_discard_temp_on_switch;

/* history.c; history_retention is read by the SQL functions only */
extern char *ti_history_retention;
extern char *ti_history_purge_interval;
extern char *ti_history_purge_databases;
extern bool ti_check_interval_setting(char **newval, void **extra, GucSource source);
extern bool ti_parse_interval_usecs(const char *text, int64 *usecs);

/* monitor.c and peer.c: the integrity monitor and its peer connections */
extern char *ti_monitor_databases;
extern int	ti_verify_interval;
extern int	ti_max_auto_repair_rows;
extern char *ti_peer_password_command;
extern char *ti_monitor_conninfo;

/*
 * validate(): read by the SQL functions through current_setting(); C
 * never reads them.
 */
extern char *ti_tenant_columns;
extern char *ti_key_max_age;
extern char *ti_verify_max_age;

#endif
