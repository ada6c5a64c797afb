/*
 * src/context.c
 *	  The tenant context: who the current session acts for, and the only
 *	  ways to change it.
 *
 * A session's tenant is, in order:
 *	 1. the tenant of its session user or of its outer (SET ROLE) user, when
 *		either is a tenant member role (the two must agree, or there is no
 *		usable context: fail closed);
 *	 2. otherwise the context a switcher or a token entered, carried in the
 *		hidden setting tenant_iso.tenant.
 *
 * Using a setting for (2) gives us transaction, savepoint and LOCAL
 * semantics and propagation to parallel workers for free.  Its check hook
 * refuses every change that does not come from set_tenant(),
 * set_tenant_token() or reset_tenant() in this file (flag
 * allow_context_change), from a parallel worker restoring its leader's
 * state, or from the boot default.  RESET, SET DEFAULT, ALTER ROLE/DATABASE
 * SET and DISCARD ALL bypass check hooks, so the utility hook routes them
 * through ti_context_guard_utility() below.
 *
 * The effective tenant is cached per backend and recomputed when the
 * setting, the session or outer user, or any configuration table changes;
 * current_tenant() and _enforced_tenant() are therefore cheap enough to be
 * evaluated per row.
 *
 * The setting itself is defined in guc.c (check and assign hooks here).
 * Subsystems that react to a context change (cursors.c fails portals opened
 * under another context, residue.c may discard temporary objects) register
 * a callback with ti_context_register_callback(); context.c includes none
 * of their headers.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/string.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "kdf.h"
#include "tenant_iso.h"
#include "token.h"
#include "tokenkeys.h"

static bool allow_context_change = false;
static uint64 context_gen = 1;

/* cache of the effective tenant */
static struct
{
	bool		valid;
	uint64		ctx_gen;
	uint64		reg_gen;
	Oid			session_user;
	Oid			outer_user;
	Oid			current_user;
	bool		has_tenant;
	bool		conflict;		/* session and outer user in different tenants */
	bool		from_member;
	TiTenantStatus status;
	char		tenant[NAMEDATALEN];
}			eff;

static const char *
role_name_for_log(void)
{
	Oid			role = GetOuterUserId();

	if (OidIsValid(role) && IsTransactionState())
	{
		char	   *name = GetUserNameFromId(role, true);

		if (name)
			return name;
	}
	return psprintf("oid %u", role);
}

/* Every refusal is logged with the role and the reason, never a token. */
static void
log_refusal(const char *reason)
{
	ereport(LOG,
			(errmsg("tenant_iso: refused tenant context change for role \"%s\": %s",
					role_name_for_log(), reason),
			 errhidestmt(true),
			 errhidecontext(true)));
}

static bool names_context_guc(const char *name);
static void refuse_setting_stmt(const char *what);

bool
ti_check_context(char **newval, void **extra, GucSource source)
{
	if (allow_context_change || source == PGC_S_DEFAULT ||
		IsParallelWorker() || InitializingParallelWorker)
		return true;

	log_refusal("direct change of tenant_iso.tenant");
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("tenant context cannot be set directly");
	GUC_check_errhint("Use tenant_iso.set_tenant() or tenant_iso.set_tenant_token().");
	return false;
}

void
ti_assign_context(const char *newval, void *extra)
{
	context_gen++;
}

void
ti_context_init(void)
{
	ti_tokens_init();
}

static void
compute_effective(void)
{
	Oid			sess = GetSessionUserId();
	Oid			outer = GetOuterUserId();
	Oid			cur = GetUserId();
	uint64		rg = ti_registry_generation();
	const char *ms,
			   *mo,
			   *mc,
			   *member;

	if (eff.valid && eff.ctx_gen == context_gen && eff.reg_gen == rg &&
		eff.session_user == sess && eff.outer_user == outer &&
		eff.current_user == cur)
		return;

	eff.valid = false;
	eff.has_tenant = false;
	eff.conflict = false;
	eff.from_member = false;
	eff.status = TI_TENANT_UNKNOWN;

	ms = OidIsValid(sess) ? ti_member_tenant(sess) : NULL;
	mo = (OidIsValid(outer) && outer != sess) ? ti_member_tenant(outer) : NULL;

	/*
	 * The current user differs from the outer one inside SECURITY DEFINER
	 * functions and other SetUserIdAndSecContext blocks.  Code owned by a
	 * member of tenant X acts for X: from any other tenant's context that is
	 * a conflict, so it fails closed instead of reading that tenant's rows
	 * with X's rights.
	 */
	mc = (OidIsValid(cur) && cur != outer && cur != sess) ? ti_member_tenant(cur) : NULL;
#ifdef TENANT_ISO_MUTANT_NO_FOREIGN
	mc = NULL;
#endif

	member = ms ? ms : (mo ? mo : mc);
	if ((ms && mo && strcmp(ms, mo) != 0) ||
		(mc && member && strcmp(mc, member) != 0))
		eff.conflict = true;
	else if (ms || mo)
	{
		strlcpy(eff.tenant, member, NAMEDATALEN);
		eff.has_tenant = true;
		eff.from_member = true;
	}
	else if (mc)
	{
		/* only the current user is a member: its tenant, unless a switched context disagrees */
		if (ti_context_guc && ti_context_guc[0] != '\0' && strcmp(ti_context_guc, mc) != 0)
			eff.conflict = true;
		else
		{
			strlcpy(eff.tenant, mc, NAMEDATALEN);
			eff.has_tenant = true;
			eff.from_member = true;
		}
	}
	else if (ti_context_guc && ti_context_guc[0] != '\0')
	{
		strlcpy(eff.tenant, ti_context_guc, NAMEDATALEN);
		eff.has_tenant = true;
	}
	if (eff.has_tenant)
		eff.status = ti_tenant_status(eff.tenant);

	/* the lookups above may have reloaded caches: take the generation now */
	eff.reg_gen = ti_registry_generation();
	eff.ctx_gen = context_gen;
	eff.session_user = sess;
	eff.outer_user = outer;
	eff.current_user = cur;
	eff.valid = true;
}

const char *
ti_effective_tenant(void)
{
	compute_effective();
	return eff.has_tenant ? eff.tenant : NULL;
}

bool
ti_in_tenant_context(void)
{
	compute_effective();
	return eff.has_tenant || eff.conflict;
}

static const char *
member_tenant_of_session(void)
{
	compute_effective();
	if (eff.conflict)
		return "";
	return eff.from_member ? eff.tenant : NULL;
}

/* Change the hidden setting; the only place that may. */
static bool session_context_changed = false;
static bool local_context_changed = false;

/* Did this transaction change the session-level (not LOCAL) context? */
bool
ti_context_changed_in_xact(void)
{
	return session_context_changed;
}

/*
 * Did this transaction enter or leave a context with local => true?  Then
 * the context changes again when it ends.
 */
bool
ti_context_local_changed_in_xact(void)
{
	return local_context_changed;
}

void
ti_context_xact_end(void)
{
	session_context_changed = false;
	local_context_changed = false;
}

/* set by ti_context_register_callback() in _PG_init; never changed after */
#define MAX_CONTEXT_CALLBACKS 4
static TiContextCallback context_callbacks[MAX_CONTEXT_CALLBACKS];
static int	n_context_callbacks = 0;

void
ti_context_register_callback(TiContextCallback fn)
{
	if (n_context_callbacks >= MAX_CONTEXT_CALLBACKS)
		elog(ERROR, "too many tenant context callbacks");
	context_callbacks[n_context_callbacks++] = fn;
}

static void
apply_context(const char *value, bool local)
{
	bool		changed = strcmp(ti_context_guc ? ti_context_guc : "", value) != 0;

	if (!local && IsTransactionBlock())
		session_context_changed = true;
	if (local && changed)
		local_context_changed = true;
	allow_context_change = true;
	PG_TRY();
	{
		(void) set_config_option(TI_CONTEXT_GUC, value,
								 PGC_USERSET, PGC_S_SESSION,
								 local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
								 true, 0, false);
	}
	PG_FINALLY();
	{
		allow_context_change = false;
	}
	PG_END_TRY();
	for (int i = 0; i < n_context_callbacks; i++)
		context_callbacks[i] (changed);

	if (ti_log_context_changes)
		ereport(LOG,
				(errmsg("tenant_iso: role \"%s\" %s tenant context%s%s",
						role_name_for_log(),
						value[0] ? "entered" : "left",
						value[0] ? " " : "", value),
				 errhidestmt(true),
				 errhidecontext(true)));
}

void
ti_clear_switcher_context(void)
{
	if (ti_context_guc && ti_context_guc[0] != '\0')
		apply_context("", false);
}

static void
check_tenant_id_arg(const char *id)
{
	if (!ti_tenant_id_valid(id, strlen(id)))
	{
		log_refusal("invalid tenant id");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant id"),
				 errdetail(TI_TENANT_ID_DETAIL)));
	}
}

static void
require_extension(void)
{
	if (!ti_extension_present())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"tenant_iso\" is not installed in this database")));
}

/* A member role's session cannot leave or switch its tenant. */
static void
refuse_member_switch(const char *target)
{
	const char *mine = member_tenant_of_session();

	if (mine == NULL || (target != NULL && strcmp(mine, target) == 0))
		return;
	log_refusal("role is a tenant member and cannot switch tenants");
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("role \"%s\" is a tenant member and cannot switch tenants",
					role_name_for_log()),
			 errhidestmt(true),
			 errhidecontext(true)));
}

PG_FUNCTION_INFO_V1(ti_set_tenant);
Datum
ti_set_tenant(PG_FUNCTION_ARGS)
{
	char	   *id;
	bool		local = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);

	require_extension();
	if (PG_ARGISNULL(0))
	{
		log_refusal("null tenant id");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant id"),
				 errdetail("The tenant id must not be null; use reset_tenant() to leave a context.")));
	}
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_tenant_id_arg(id);
	refuse_member_switch(id);
	if (member_tenant_of_session() != NULL)
		PG_RETURN_VOID();		/* already in that tenant, by membership */

	if (!superuser() && !ti_is_switcher(GetUserId()))
	{
		log_refusal("role is not a switcher");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to switch tenant context"),
				 errhint("A superuser can allow it with tenant_iso.grant_switch(), or use a token from tenant_iso.issue_token().")));
	}
	switch (ti_tenant_status(id))
	{
		case TI_TENANT_UNKNOWN:
			log_refusal("unknown tenant");
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tenant \"%s\" does not exist", id)));
			break;
		case TI_TENANT_SUSPENDED:
			log_refusal("tenant is suspended");
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("tenant \"%s\" is suspended", id)));
			break;
		case TI_TENANT_ACTIVE:
			break;
	}
	apply_context(id, local);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ti_reset_tenant);
Datum
ti_reset_tenant(PG_FUNCTION_ARGS)
{
	ti_clear_switcher_context();
	PG_RETURN_VOID();
}

static void
refuse_token(const char *reason, const char *message)
{
	log_refusal(reason);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s", message),
			 errhidestmt(true),
			 errhidecontext(true)));
}

static int64
unix_now(void)
{
	return (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
}

/* Unix microseconds <-> TimestampTz */
#define UNIX_EPOCH_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC)

/*
 * The MAC key and the audience id for one key id in this database.  The
 * base key comes from the master key (ti_derive_key("token")); the MAC key
 * binds the key id and the audience to it, so that rotating the token key
 * needs no new master key, and a token from another database or cluster
 * does not verify here.  A failure must not log the statement, which holds
 * the token.
 */
static void
token_keys_for(uint32 kid, uint8 *mac_key, uint8 *aud_id)
{
	/*
	 * The last few derived keys, by key id, audience and base key, so that
	 * a token costs one HMAC and not an HKDF as well.  The base key is
	 * compared, not trusted, so that a new master key is noticed.
	 */
#define TOKEN_KEY_CACHE 4
	static struct
	{
		bool		valid;
		uint32		kid;
		uint8		base[TI_KEY_LEN];
		uint8		mac[TI_KEY_LEN];
		uint8		aud_id[TI_TOKEN_AUD_LEN];
		char		aud[TI_TOKEN_AUDIENCE_MAX + 1];
	}			cache[TOKEN_KEY_CACHE];
	static int	next_slot = 0;
	uint8		base[TI_KEY_LEN];
	const char *aud;
	int			rc;
	int			i;
	MemoryContext fn_cxt = CurrentMemoryContext;

	PG_TRY();
	{
		ti_derive_key("token", base);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(fn_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		edata->hide_ctx = true;
		ReThrowError(edata);
	}
	PG_END_TRY();
	aud = ti_token_audience();
	for (i = 0; i < TOKEN_KEY_CACHE; i++)
	{
		if (cache[i].valid && cache[i].kid == kid &&
			strcmp(cache[i].aud, aud) == 0 &&
			ti_ct_equal(cache[i].base, base, TI_KEY_LEN))
		{
			memcpy(mac_key, cache[i].mac, TI_KEY_LEN);
			memcpy(aud_id, cache[i].aud_id, TI_TOKEN_AUD_LEN);
			ti_wipe(base, sizeof(base));
			return;
		}
	}
	rc = ti_token_mac_key(base, kid, aud, strlen(aud), mac_key);
	if (rc == 0)
		rc = ti_token_audience_id(aud, strlen(aud), aud_id);
	if (rc != 0)
	{
		ti_wipe(base, sizeof(base));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive the token key"),
				 errhidestmt(true),
				 errhidecontext(true)));
	}
	i = next_slot;
	next_slot = (next_slot + 1) % TOKEN_KEY_CACHE;
	ti_wipe(&cache[i], sizeof(cache[i]));
	cache[i].kid = kid;
	memcpy(cache[i].base, base, TI_KEY_LEN);
	memcpy(cache[i].mac, mac_key, TI_KEY_LEN);
	memcpy(cache[i].aud_id, aud_id, TI_TOKEN_AUD_LEN);
	strlcpy(cache[i].aud, aud, sizeof(cache[i].aud));
	cache[i].valid = true;
	ti_wipe(base, sizeof(base));
}

PG_FUNCTION_INFO_V1(ti_set_tenant_token);
Datum
ti_set_tenant_token(PG_FUNCTION_ARGS)
{
	text	   *t;
	uint8		key[TI_KEY_LEN];
	uint8		aud[TI_TOKEN_AUD_LEN];
	uint32		kid;
	ti_token	tok;
	ti_token_status st;
	bool		local = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	TimestampTz now = GetCurrentTimestamp();

	require_extension();
	if (PG_ARGISNULL(0))
		refuse_token("null token", "invalid tenant token");
	t = PG_GETARG_TEXT_PP(0);

	/* the key id is public: it only chooses the key to verify with */
	if (ti_token_peek_kid(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &kid) != TI_TOKEN_OK)
		refuse_token("malformed token", "invalid tenant token");
	if (!ti_token_kid_usable(kid, now))
		refuse_token("token key is unknown or retired", "invalid tenant token");

	token_keys_for(kid, key, aud);
	st = ti_token_verify(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), key, aud, &tok);
	ti_wipe(key, sizeof(key));
	switch (st)
	{
		case TI_TOKEN_OK:
			break;
		case TI_TOKEN_MALFORMED:
			refuse_token("malformed token", "invalid tenant token");
			break;
		case TI_TOKEN_BAD_MAC:
			refuse_token("token signature does not verify (altered, or issued for another audience)",
						 "invalid tenant token");
			break;
		case TI_TOKEN_WRONG_AUDIENCE:
			refuse_token("token was issued for another audience", "invalid tenant token");
			break;
		case TI_TOKEN_INTERNAL:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("token verification failed"),
					 errhidestmt(true),
					 errhidecontext(true)));
	}
	/*
	 * Expired at its own expiry, or once older than token_max_ttl is now,
	 * so that lowering the setting also shortens tokens already issued.
	 */
	if (tok.expires <= unix_now() ||
		now - (tok.issued - UNIX_EPOCH_USECS) >= ti_token_max_ttl())
		refuse_token("token has expired", "tenant token has expired");
	switch (ti_tenant_status(tok.tenant))
	{
		case TI_TENANT_UNKNOWN:
			refuse_token("token names an unknown tenant", "tenant token names an unknown tenant");
			break;
		case TI_TENANT_SUSPENDED:
			refuse_token("token names a suspended tenant", "tenant token names a suspended tenant");
			break;
		case TI_TENANT_ACTIVE:
			break;
	}
	/* a suspension, a resumption and a re-creation also revoke (70_tokens.sql) */
	if (tok.issued - UNIX_EPOCH_USECS < ti_token_revoked_before(tok.tenant))
		refuse_token("token has been revoked", "tenant token has been revoked");
	refuse_member_switch(tok.tenant);
	if (member_tenant_of_session() == NULL)
		apply_context(tok.tenant, local);
	ti_wipe(&tok, sizeof(tok));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ti_issue_token);
Datum
ti_issue_token(PG_FUNCTION_ARGS)
{
	char	   *id;
	Interval   *ttl;
	int64		usecs;
	ti_token	tok;
	uint8		key[TI_KEY_LEN];
	char		out[TI_TOKEN_MAX_TEXT + 1];
	int			n;
	uint32		kid;
	TimestampTz now;

	require_extension();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant id and ttl must not be null")));
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ttl = PG_GETARG_INTERVAL_P(1);
	check_tenant_id_arg(id);

	/* months count as 30 days, as in justify_days(); bounded before the sum */
	if (ttl->month > 120 || ttl->month < -120 || ttl->day > 3660 || ttl->day < -3660)
		usecs = PG_INT64_MAX;
	else
		usecs = ttl->time + (int64) ttl->day * USECS_PER_DAY +
			(int64) ttl->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (usecs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token lifetime must be positive")));
	if (usecs > ti_token_max_ttl())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token lifetime exceeds tenant_iso.token_max_ttl"),
				 errdetail("The maximum is %s.",
						   GetConfigOption("tenant_iso.token_max_ttl", false, false)),
				 errhint("A superuser can raise tenant_iso.token_max_ttl.")));

	switch (ti_tenant_status(id))
	{
		case TI_TENANT_UNKNOWN:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tenant \"%s\" does not exist", id)));
			break;
		case TI_TENANT_SUSPENDED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant \"%s\" is suspended", id)));
			break;
		case TI_TENANT_ACTIVE:
			break;
	}
	if (!ti_token_current_kid(&kid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there is no current token key"),
				 errhint("Call tenant_iso.rotate_token_key() to make one.")));

	now = GetCurrentTimestamp();
	memset(&tok, 0, sizeof(tok));
	strlcpy(tok.tenant, id, sizeof(tok.tenant));
	tok.kid = kid;
	tok.issued = now + UNIX_EPOCH_USECS;
	tok.expires = unix_now() + (usecs + USECS_PER_SEC - 1) / USECS_PER_SEC;
	if (!pg_strong_random(tok.nonce, sizeof(tok.nonce)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));

	token_keys_for(kid, key, tok.aud);
	n = ti_token_encode(&tok, key, out, sizeof(out));
	ti_wipe(key, sizeof(key));
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encode token")));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, n));
}

PG_FUNCTION_INFO_V1(ti_current_tenant);
Datum
ti_current_tenant(PG_FUNCTION_ARGS)
{
	compute_effective();
	if (!eff.has_tenant)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(eff.tenant));
}

/*
 * The tenant every row policy compares with.  Fails closed: 42501 when
 * there is no context, a membership conflict, or a tenant that is not
 * active.
 */
const char *
ti_enforced_tenant_or_error(void)
{
	compute_effective();
	if (eff.has_tenant && eff.status == TI_TENANT_ACTIVE)
		return eff.tenant;

	if (eff.conflict)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context"),
				 errdetail("The session user, the current role or the owner of the running SECURITY DEFINER code belong to different tenants, or to another tenant than the session's context.")));
	if (!eff.has_tenant)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context"),
				 errhint("Connect as a tenant member role, or call tenant_iso.set_tenant() or tenant_iso.set_tenant_token() first.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("tenant \"%s\" is %s", eff.tenant,
					eff.status == TI_TENANT_SUSPENDED ? "suspended" : "not registered")));
	return NULL;
}

PG_FUNCTION_INFO_V1(ti_enforced_tenant);
Datum
ti_enforced_tenant(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ti_enforced_tenant_or_error()));
}

PG_FUNCTION_INFO_V1(ti_caller);
Datum
ti_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * Called by the utility hook before a statement runs: refuse the routes
 * that would change the hidden setting without its check hook.
 */
static bool
names_context_guc(const char *name)
{
	return name != NULL && pg_strcasecmp(name, TI_CONTEXT_GUC) == 0;
}

static void
refuse_setting_stmt(const char *what)
{
	log_refusal(what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("tenant context cannot be set directly"),
			 errhint("Use tenant_iso.set_tenant() or tenant_iso.set_tenant_token().")));
}

void
ti_context_guard_utility(Node *stmt)
{
	VariableSetStmt *vs = NULL;

	switch (nodeTag(stmt))
	{
		case T_VariableSetStmt:
			vs = (VariableSetStmt *) stmt;
			if (names_context_guc(vs->name))
				refuse_setting_stmt("SET or RESET of tenant_iso.tenant");
			break;
		case T_AlterRoleSetStmt:
			vs = ((AlterRoleSetStmt *) stmt)->setstmt;
			if (vs && names_context_guc(vs->name))
				refuse_setting_stmt("ALTER ROLE ... SET tenant_iso.tenant");
			break;
		case T_AlterDatabaseSetStmt:
			vs = ((AlterDatabaseSetStmt *) stmt)->setstmt;
			if (vs && names_context_guc(vs->name))
				refuse_setting_stmt("ALTER DATABASE ... SET tenant_iso.tenant");
			break;
		case T_AlterSystemStmt:
			vs = ((AlterSystemStmt *) stmt)->setstmt;
			if (vs && names_context_guc(vs->name))
				refuse_setting_stmt("ALTER SYSTEM SET tenant_iso.tenant");
			break;
		default:
			break;
	}
}

/*
 * set_config('tenant_iso.tenant', NULL, ...) is a RESET in disguise and
 * bypasses the check hook; refuse any set_config() call that names the
 * setting with a constant.  (With a computed name it can still only clear a
 * switcher's context, never enter one; see the README.)
 */
static bool
find_set_config(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_SET_CONFIG)
	{
		Node	   *arg = linitial(((FuncExpr *) node)->args);

		while (arg && IsA(arg, RelabelType))
			arg = (Node *) ((RelabelType *) arg)->arg;
		if (arg && IsA(arg, Const) && !((Const *) arg)->constisnull &&
			names_context_guc(TextDatumGetCString(((Const *) arg)->constvalue)))
			return true;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_set_config, context, 0);
	return expression_tree_walker(node, find_set_config, context);
}

/* Called by hooks.c after parse analysis of every statement. */
void
ti_context_post_parse(Query *query)
{
	if (query->commandType != CMD_UTILITY &&
		query_tree_walker(query, find_set_config, NULL, 0))
		refuse_setting_stmt("set_config() of tenant_iso.tenant");
}
