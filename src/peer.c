/*
 * src/peer.c
 *	  diff_peer() and repair_from_peer(): compare a table with the same
 *	  table on another node through libpq, and make the local rows equal to
 *	  the peer's.
 *
 * Both sides compute live digests (no stored digests needed, so a logical
 * subscriber whose triggers do not fire can be compared), in three rounds
 * that narrow down: per tenant, per (tenant, bucket) for the tenants that
 * differ, then the primary keys and short row hashes of the buckets that
 * differ.  The peer computes its side while this node computes its own.  The
 * connection uses a connect timeout and never reports the conninfo, which
 * may hold a password.  Bytes received are counted for the benchmark
 * (tenant_iso._peer_bytes()).
 *
 * A peer is verified, never believed (T5).  Every round runs in one
 * REPEATABLE READ READ ONLY transaction on the peer, so what is compared is
 * what is fetched.  Whatever the peer sends that was not asked for (another
 * tenant, another bucket, a duplicate key) aborts with XX001.  A row fetched
 * for a repair is inserted, re-hashed here with the same canonical encoder,
 * and kept only if its tenant, key and hash are those requested and
 * advertised; otherwise the repair aborts (XX001) and, being one
 * transaction, writes nothing.  Local deletes are restricted to the
 * requested tenant.
 *
 * The connection: TLS with sslmode=verify-full unless the conninfo names
 * another sslmode (then a WARNING, except to a Unix socket or a loopback
 * address); a non-superuser must give a password, and the peer must have
 * asked for it (as dblink requires), so that this server's own .pgpass,
 * certificates or peer authentication are never lent to a caller; waiting
 * honours query cancel and pg_terminate_backend (asynchronous libpq with
 * WaitLatchOrSocket).  Neither the conninfo, nor a password, nor a row's key
 * values reach a message or a log line: statements are hidden from the log
 * and repairs log counts, tenants and row hashes.
 *
 * Elevated paths: none (diff_peer and repair_from_peer run as their caller,
 * who must be allowed to call them).  All the same, the local SPI pins
 * search_path = pg_catalog, pg_temp and qualifies every name, operators
 * included, and the peer session runs with options=-csearch_path=pg_catalog
 * and receives only qualified SQL, so that neither side resolves a name
 * through a schema an attacker can write.
 */
#include "postgres.h"

#include "libpq-fe.h"

#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"

#include "digest.h"
#include "elevated.h"
#include "guc.h"
#include "tenant_iso.h"

static int64 peer_bytes = 0;
/* bytes sent and received since the backend started (the monitor's figure) */
int64		ti_peer_bytes_total = 0;

pg_noreturn static void refuse_connect(const char *detail);

/* Notices of the peer (verify() raises some) never reach this log. */
static void
ignore_notice(void *arg, const char *message)
{
}

/* A shell-quoted copy of s, for the password command's placeholders. */
static char *
shell_quote(const char *s)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoChar(&q, '\'');
	for (; *s; s++)
	{
		if (*s == '\'')
			appendStringInfoString(&q, "'\\''");
		else
			appendStringInfoChar(&q, *s);
	}
	appendStringInfoChar(&q, '\'');
	return q.data;
}

/*
 * tenant_iso.peer_password_command, with %h %p %u %d replaced by the peer's
 * host, port, user and database (shell-quoted): the first line it prints is
 * the password.  Only for a superuser's connection (the command runs as the
 * server's system user, and its answer would otherwise be lent to the
 * caller).  Nothing it prints is ever reported.
 */
static char *
password_from_command(const char *host, const char *port, const char *user, const char *dbname)
{
	StringInfoData cmd;
	const char *c;
	FILE	   *fh;
	char		buf[1024];
	char	   *pw = NULL;
	int			rc;

	initStringInfo(&cmd);
	for (c = ti_peer_password_command; *c; c++)
	{
		const char *v = NULL;

		if (c[0] == '%' && c[1] != '\0')
		{
			switch (c[1])
			{
				case 'h':
					v = host ? host : "";
					break;
				case 'p':
					v = port ? port : "";
					break;
				case 'u':
					v = user ? user : "";
					break;
				case 'd':
					v = dbname ? dbname : "";
					break;
				case '%':
					appendStringInfoChar(&cmd, '%');
					c++;
					continue;
			}
			if (v)
			{
				appendStringInfoString(&cmd, shell_quote(v));
				c++;
				continue;
			}
		}
		appendStringInfoChar(&cmd, *c);
	}
	fh = OpenPipeStream(cmd.data, "r");
	if (fh == NULL)
		refuse_connect("tenant_iso.peer_password_command could not be run.");
	if (fgets(buf, sizeof(buf), fh) != NULL)
	{
		size_t		len = strcspn(buf, "\r\n");

		buf[len] = '\0';
		if (len > 0)
			pw = MemoryContextStrdup(TopTransactionContext, buf);
	}
	explicit_bzero(buf, sizeof(buf));
	rc = ClosePipeStream(fh);
	if (rc != 0 || pw == NULL)
		refuse_connect("tenant_iso.peer_password_command failed or printed no password.");
	return pw;
}

typedef struct PeerRow
{
	char	   *tenant;
	int32		bucket;
	char	   *key;			/* jsonb text of the primary key columns */
	char	   *hash;			/* hex row hash */
} PeerRow;

/* Replace every occurrence of secret in msg with "***". */
static char *
scrub(const char *msg, const char *secret)
{
	StringInfoData out;
	const char *p = msg;
	size_t		n = secret ? strlen(secret) : 0;
	const char *hit;

	if (n == 0)
		return pstrdup(msg);
	initStringInfo(&out);
	while ((hit = strstr(p, secret)) != NULL)
	{
		appendBinaryStringInfo(&out, p, hit - p);
		appendStringInfoString(&out, "***");
		p = hit + n;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/* Is every host of the conninfo a Unix socket or a loopback address? */
static bool
local_only(const char *host, const char *hostaddr)
{
	const char *list = (hostaddr && hostaddr[0]) ? hostaddr : host;
	char	   *copy;
	char	   *tok;
	char	   *save = NULL;

	if (list == NULL || list[0] == '\0')
		return true;			/* libpq's default: the Unix socket */
	copy = pstrdup(list);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		while (*tok == ' ')
			tok++;
		if (tok[0] == '/' || tok[0] == '@' || strcmp(tok, "localhost") == 0 ||
			strcmp(tok, "::1") == 0 || strncmp(tok, "127.", 4) == 0)
			continue;
		return false;
	}
	return true;
}

/* Send nothing of the conninfo to the log or the client. */
pg_noreturn static void
refuse_connect(const char *detail);
static void
refuse_connect(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("could not connect to the peer"),
			 errdetail_internal("%s", detail),
			 errhidestmt(true)));
}

static void
wait_socket(PGconn *conn, int events)
{
	int			rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | events,
									   PQsocket(conn), 10000L, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static char *peer_password = NULL;	/* for scrubbing libpq's messages */

static PGconn *
peer_connect(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *parse_error = NULL;
	const char **keys;
	const char **vals;
	int			n = 0;
	bool		has_sslmode = false,
				has_timeout = false,
				has_appname = false,
				has_options = false;
	const char *sslmode = NULL,
			   *host = NULL,
			   *hostaddr = NULL,
			   *port = NULL,
			   *user = NULL,
			   *dbname = NULL;
	PGconn	   *conn;
	PostgresPollingStatusType st;

	/* a malformed conninfo is refused without echoing any of it */
	opts = PQconninfoParse(conninfo, &parse_error);
	if (opts == NULL)
	{
		if (parse_error)
			PQfreemem(parse_error);
		refuse_connect("The peer's connection string is malformed.");
	}
	for (o = opts; o->keyword; o++)
		n++;
	keys = palloc0(sizeof(char *) * (n + 7));
	vals = palloc0(sizeof(char *) * (n + 7));
	n = 0;
	peer_password = NULL;
	for (o = opts; o->keyword; o++)
	{
		const char *v = o->val;

		if (v == NULL || v[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
			peer_password = MemoryContextStrdup(TopTransactionContext, v);
		else if (strcmp(o->keyword, "sslmode") == 0)
			has_sslmode = true, sslmode = pstrdup(v);
		else if (strcmp(o->keyword, "connect_timeout") == 0)
			has_timeout = true;
		else if (strcmp(o->keyword, "application_name") == 0)
			has_appname = true;
		else if (strcmp(o->keyword, "host") == 0)
			host = pstrdup(v);
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = pstrdup(v);
		else if (strcmp(o->keyword, "port") == 0)
			port = pstrdup(v);
		else if (strcmp(o->keyword, "user") == 0)
			user = pstrdup(v);
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = pstrdup(v);
		if (strcmp(o->keyword, "options") == 0)
		{
			/* the peer resolves names in pg_catalog only, whatever else is asked */
			has_options = true;
			v = psprintf("%s -csearch_path=pg_catalog", v);
		}
		keys[n] = pstrdup(o->keyword);
		vals[n] = pstrdup(v);
		n++;
	}
	PQconninfoFree(opts);
	if (!has_options)
		keys[n] = "options", vals[n++] = "-csearch_path=pg_catalog";
	if (!has_timeout)
		keys[n] = "connect_timeout", vals[n++] = "10";
	if (!has_appname)
		keys[n] = "application_name", vals[n++] = "tenant_iso peer";
	if (peer_password == NULL && superuser() &&
		ti_peer_password_command != NULL && ti_peer_password_command[0] != '\0')
	{
		peer_password = password_from_command(host ? host : hostaddr, port, user, dbname);
		keys[n] = "password", vals[n++] = peer_password;
	}
	if (!has_sslmode)
		keys[n] = "sslmode", vals[n++] = "verify-full";
	else if (strcmp(sslmode, "verify-full") != 0 && !local_only(host, hostaddr))
		ereport(WARNING,
				(errmsg("the connection to the peer is not verified with TLS (sslmode=%s)", sslmode),
				 errdetail("Rows, hashes and keys from the peer could be forged or read by anyone on the network path."),
				 errhint("Use sslmode=verify-full, or leave sslmode out of the connection string."),
				 errhidestmt(true)));
	keys[n] = NULL;
	vals[n] = NULL;

	/*
	 * Credentials: as dblink, a non-superuser must bring a password, and
	 * the peer must ask for it, or this server's own credentials (.pgpass,
	 * client certificates, peer or trust authentication) would be lent to
	 * the caller.
	 */
	if (!superuser() && peer_password == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers must provide a password in the peer's connection string."),
				 errhidestmt(true)));

	conn = PQconnectStartParams(keys, vals, 0);
	if (conn == NULL)
		refuse_connect("out of memory");
	PG_TRY();
	{
		if (PQstatus(conn) == CONNECTION_BAD)
			st = PGRES_POLLING_FAILED;
		else
			st = PGRES_POLLING_WRITING;
		while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
		{
			wait_socket(conn, st == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE);
			st = PQconnectPoll(conn);
		}
		if (st == PGRES_POLLING_FAILED || PQstatus(conn) != CONNECTION_OK)
		{
			char	   *msg = pchomp(PQerrorMessage(conn));
			char	   *clean = msg;

			if (peer_password)
				clean = scrub(msg, peer_password);
			refuse_connect(clean);
		}
		PQsetNoticeProcessor(conn, ignore_notice, NULL);
		if (!superuser() && !PQconnectionUsedPassword(conn))
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required"),
					 errdetail("The peer did not ask for the password; a non-superuser may not connect with this server's own credentials."),
					 errhidestmt(true)));
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return conn;
}

/*
 * The primary key of a table as SQL, each part only if asked for: *cols
 * "t.k1, t.k2" and *match "t.k1 OPERATOR(nsp.=) r.k1 AND ...".  Each column
 * is compared with the equality operator of its index's operator family,
 * named with its schema, so that no search_path picks the operator (the key
 * type's may live outside pg_catalog) and the index still serves the
 * comparison.
 */
static void
key_sql(Oid relid, char **cols, char **match)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			pk = ti_primary_key_index(rel);
	Relation	idx;
	StringInfoData c;
	StringInfoData m;
	int			i;

	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel))));
	idx = relation_open(pk, AccessShareLock);
	initStringInfo(&c);
	initStringInfo(&m);
	for (i = 0; i < idx->rd_index->indnkeyatts; i++)
	{
		const char *col = quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel),
																  idx->rd_index->indkey.values[i] - 1)->attname));
		Oid			eq;
		HeapTuple	optup;
		Form_pg_operator op;

		appendStringInfo(&c, "%st.%s", i ? ", " : "", col);
		if (match == NULL)
			continue;
		eq = get_opfamily_member(idx->rd_opfamily[i], idx->rd_opcintype[i],
								 idx->rd_opcintype[i], BTEqualStrategyNumber);
		if (!OidIsValid(eq))
			elog(ERROR, "no equality operator for primary key column %s", col);
		optup = SearchSysCache1(OPEROID, ObjectIdGetDatum(eq));
		if (!HeapTupleIsValid(optup))
			elog(ERROR, "cache lookup failed for operator %u", eq);
		op = (Form_pg_operator) GETSTRUCT(optup);
		appendStringInfo(&m, "%st.%s OPERATOR(%s.%s) r.%s", i ? " AND " : "",
						 col, quote_identifier(get_namespace_name(op->oprnamespace)),
						 NameStr(op->oprname), col);
		ReleaseSysCache(optup);
	}
	relation_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (cols)
		*cols = c.data;
	if (match)
		*match = m.data;
}

/*
 * SQL that lists (tenant, bucket, key jsonb, row hash) of some buckets;
 * $1..$4.  Run on both sides: every name qualified, operators included.
 */
static char *
rows_sql(const char *relname, const char *keycols)
{
	return psprintf("SELECT b.tenant_id, b.bucket, (SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT %s) k)::pg_catalog.text, "
					"pg_catalog.encode(b.rowhash, 'hex') "
					"FROM tenant_iso._bucket_rows($1, $2::pg_catalog.text[], $3, $4::pg_catalog.int4[]) b "
					"JOIN %s t ON t.tableoid OPERATOR(pg_catalog.=) b.leaf AND t.ctid OPERATOR(pg_catalog.=) b.tid",
					keycols, relname);
}

typedef struct RemoteBucket
{
	BucketKey	key;
	char		fingerprint[33];
} RemoteBucket;

typedef struct Diff
{
	char	   *tenant;
	char	   *key;
	const char *status;
	char	   *hash;			/* the peer's advertised row hash (differs, missing_here) */
	int32		bucket;
} Diff;

static int
cmp_rows(const void *a, const void *b)
{
	const PeerRow *x = a,
			   *y = b;
	int			c = strcmp(x->tenant, y->tenant);

	return c ? c : strcmp(x->key, y->key);
}

pg_noreturn static void
peer_failed(PGconn *conn, PGresult *res);
static void
peer_failed(PGconn *conn, PGresult *res)
{
	char	   *msg = pchomp(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));

	if (res)
		PQclear(res);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("query on the peer failed"),
			 errdetail_internal("%s", msg),
			 errhint("The peer needs tenant_iso and the same tracked table, and a role that may read every tenant's rows."),
			 errhidestmt(true)));
}

/* Send a query to the peer without waiting for it. */
static void
peer_send(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	int			i;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		peer_failed(conn, NULL);
	ti_peer_bytes_total += strlen(sql);
	for (i = 0; i < nparams; i++)
		ti_peer_bytes_total += params[i] ? strlen(params[i]) : 0;
}

/*
 * Collect the result of peer_send(), waiting on the socket and the latch so
 * that a cancel or pg_terminate_backend() interrupts the wait.
 */
static PGresult *
peer_wait(PGconn *conn, ExecStatusType want)
{
	PGresult   *res = NULL;
	int			i,
				c;

	for (;;)
	{
		PGresult   *r;

		while (PQisBusy(conn))
		{
			wait_socket(conn, WL_SOCKET_READABLE);
			if (!PQconsumeInput(conn))
				peer_failed(conn, res);
		}
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		if (res)
			PQclear(res);
		res = r;
	}
	if (res == NULL || PQresultStatus(res) != want)
		peer_failed(conn, res);
	for (i = 0; i < PQntuples(res); i++)
		for (c = 0; c < PQnfields(res); c++)
		{
			peer_bytes += PQgetlength(res, i, c);
			ti_peer_bytes_total += PQgetlength(res, i, c);
		}
	return res;
}

static PGresult *
peer_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	peer_send(conn, sql, nparams, params);
	return peer_wait(conn, PGRES_TUPLES_OK);
}

/* A hostile or broken peer: abort, naming nothing it sent. */
#ifndef TENANT_ISO_MUTANT_TRUST_PEER
pg_noreturn static void
peer_lied(const char *what);
#define TI_PEER_LIED ERROR
#else
/* the mutation build believes the peer: test/pgtap/attack_peer.sql must fail */
#define TI_PEER_LIED WARNING
#endif
static void
peer_lied(const char *what)
{
	ereport(TI_PEER_LIED,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the peer sent %s", what),
			 errdetail("Nothing was written."),
			 errhint("Check the peer; do not repair from it."),
			 errhidestmt(true)));
}

/* Open the one transaction every round runs in, on the peer. */
static void
peer_begin(PGconn *conn)
{
	peer_send(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
	PQclear(peer_wait(conn, PGRES_COMMAND_OK));
}

/* Close the connection; cancel what still runs there. */
static void
peer_close(PGconn *conn)
{
	if (PQtransactionStatus(conn) == PQTRANS_ACTIVE)
	{
		PGcancel   *cancel = PQgetCancel(conn);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
	}
	PQfinish(conn);
}

/* A text[] literal of strings (tenant ids are plain: see token.c). */
static char *
text_array_literal(List *items)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	foreach(lc, items)
		appendStringInfo(&s, "%s\"%s\"", s.len > 1 ? "," : "", (char *) lfirst(lc));
	appendStringInfoChar(&s, '}');
	return s.data;
}

/*
 * Compare the live bucket fingerprints of both sides for some tenants (NIL:
 * all); the peer computes its side while we compute ours.  Returns the
 * differing (tenant, bucket) keys as a list of BucketKey.
 */
static List *
differing_buckets(Oid relid, const char *relname, PGconn *conn, List *tenants, int nbuckets)
{
	char		nb[16];
	const char *params[3];
	HTAB	   *local;
	HTAB	   *remote;
	HASHCTL		ctl;
	PGresult   *res;
	HASH_SEQ_STATUS seq;
	BucketEntry *e;
	RemoteBucket *rb;
	List	   *out = NIL;
	int			r;

	snprintf(nb, sizeof(nb), "%d", nbuckets);
	params[0] = relname;
	params[1] = tenants ? text_array_literal(tenants) : NULL;
	params[2] = nb;
	peer_send(conn, "SELECT b.tenant_id, b.bucket, b.fingerprint "
			  "FROM tenant_iso._bucket_digests($1, $2::pg_catalog.text[], $3) b", 3, params);
	local = ti_live_digests(relid, tenants, nbuckets);
	res = peer_wait(conn, PGRES_TUPLES_OK);
	if (PQnfields(res) != 3)
	{
		PQclear(res);
		peer_lied("a malformed answer");
	}

	ctl.keysize = sizeof(BucketKey);
	ctl.entrysize = sizeof(RemoteBucket);
	ctl.hcxt = CurrentMemoryContext;
	remote = hash_create("tenant_iso peer digests", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (r = 0; r < PQntuples(res); r++)
	{
		BucketKey	k;
		bool		found;

		const char *t = PQgetvalue(res, r, 0);
		ListCell   *lc;
		bool		asked = (tenants == NIL);

		foreach(lc, tenants)
			if (strcmp((const char *) lfirst(lc), t) == 0)
				asked = true;
		memset(&k, 0, sizeof(k));
		strlcpy(k.tenant, t, NAMEDATALEN);
		k.bucket = atoi(PQgetvalue(res, r, 1));
		if (!asked || strlen(t) >= NAMEDATALEN || k.bucket < 0 || k.bucket >= nbuckets)
		{
			PQclear(res);
			peer_lied("digests it was not asked for");
		}
		rb = hash_search(remote, &k, HASH_ENTER, &found);
		if (found)
		{
			PQclear(res);
			peer_lied("the same digest twice");
		}
		strlcpy(rb->fingerprint, PQgetvalue(res, r, 2), sizeof(rb->fingerprint));
	}
	PQclear(res);

	hash_seq_init(&seq, local);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		char		fp[33];

		rb = hash_search(remote, &e->key, HASH_FIND, NULL);
		ti_lthash_fingerprint(&e->digest, fp);
		if (rb == NULL || strcmp(rb->fingerprint, fp) != 0)
		{
			BucketKey  *k = palloc(sizeof(BucketKey));

			*k = e->key;
			out = lappend(out, k);
		}
	}
	hash_seq_init(&seq, remote);
	while ((rb = hash_seq_search(&seq)) != NULL)
	{
		if (hash_search(local, &rb->key, HASH_FIND, NULL) == NULL)
		{
			BucketKey  *k = palloc(sizeof(BucketKey));

			*k = rb->key;
			out = lappend(out, k);
		}
	}
	return out;
}

/*
 * Compute the differences between this node and the peer, in three
 * rounds: one fingerprint per tenant; fingerprints of TI_DIFF_BUCKETS
 * buckets for the tenants that differ; keys and row hashes of the buckets
 * that differ.  Only the first round hashes every row; the others skip the
 * rows of other tenants before hashing.
 */
static List *
compute_diff(Oid relid, PGconn *conn, const char *tenant)
{
	char	   *relname = ti_qualified_name(relid);
	char	   *keycols;
	List	   *tenants = NIL;
	List	   *buckets;
	ListCell   *lc;
	List	   *diffs = NIL;
	PeerRow    *lrows = NULL,
			   *rrows = NULL;
	int			nl = 0,
				nr = 0,
				i,
				j,
				r;

	key_sql(relid, &keycols, NULL);

	/* round 1: one fingerprint per tenant */
	buckets = differing_buckets(relid, relname, conn, tenant ? list_make1(pstrdup(tenant)) : NIL, 1);
	if (buckets == NIL)
		return NIL;
	foreach(lc, buckets)
		tenants = lappend(tenants, pstrdup(((BucketKey *) lfirst(lc))->tenant));

	/* round 2: the buckets of those tenants */
	buckets = differing_buckets(relid, relname, conn, tenants, TI_DIFF_BUCKETS);
	if (buckets == NIL)
		return NIL;

	/* round 3: the rows of the differing buckets, on both sides */
	{
		char	   *sql = rows_sql(relname, keycols);
		List	   *btenants = NIL;
		StringInfoData bl;
		char		nb[16];
		const char *params[4];
		PGresult   *res;
		Oid			argtypes[4] = {TEXTOID, TEXTOID, INT4OID, TEXTOID};
		Datum		values[4];
		MemoryContext outer;
		uint64		k;
		HTAB	   *asked;
		HASHCTL		ctl;
		int			nest;

		ctl.keysize = sizeof(BucketKey);
		ctl.entrysize = sizeof(BucketKey);
		ctl.hcxt = CurrentMemoryContext;
		asked = hash_create("tenant_iso asked buckets", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		initStringInfo(&bl);
		appendStringInfoChar(&bl, '{');
		foreach(lc, buckets)
		{
			BucketKey  *bk = lfirst(lc);

			btenants = lappend(btenants, bk->tenant);
			appendStringInfo(&bl, "%s%d", bl.len > 1 ? "," : "", bk->bucket);
			(void) hash_search(asked, bk, HASH_ENTER, NULL);
		}
		appendStringInfoChar(&bl, '}');
		snprintf(nb, sizeof(nb), "%d", TI_DIFF_BUCKETS);
		params[0] = relname;
		params[1] = text_array_literal(btenants);
		params[2] = nb;
		params[3] = bl.data;
		peer_send(conn, sql, 4, params);

		outer = CurrentMemoryContext;
		nest = ti_pin_search_path();
		SPI_connect();
		values[0] = CStringGetTextDatum(relname);
		values[1] = CStringGetTextDatum(params[1]);
		values[2] = Int32GetDatum(TI_DIFF_BUCKETS);
		values[3] = CStringGetTextDatum(bl.data);
		ti_peer_local_call = true;
		PG_TRY();
		{
			if (SPI_execute_with_args(sql, 4, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not list local rows");
		}
		PG_FINALLY();
		{
			ti_peer_local_call = false;
		}
		PG_END_TRY();
		/* SPI leaves its own context current; results must outlive it */
		MemoryContextSwitchTo(outer);
		lrows = palloc(sizeof(PeerRow) * (SPI_processed + 1));
		for (k = 0; k < SPI_processed; k++, nl++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];

			lrows[nl].tenant = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
			lrows[nl].bucket = atoi(SPI_getvalue(tup, SPI_tuptable->tupdesc, 2));
			lrows[nl].key = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
			lrows[nl].hash = SPI_getvalue(tup, SPI_tuptable->tupdesc, 4);
		}
		SPI_finish();
		ti_unpin_search_path(nest);

		res = peer_wait(conn, PGRES_TUPLES_OK);
		if (PQnfields(res) != 4)
		{
			PQclear(res);
			peer_lied("a malformed answer");
		}
		rrows = palloc(sizeof(PeerRow) * (PQntuples(res) + 1));
		for (r = 0; r < PQntuples(res); r++, nr++)
		{
			BucketKey	bk;
			const char *h = PQgetvalue(res, r, 3);

			memset(&bk, 0, sizeof(bk));
			if (PQgetisnull(res, r, 0) || PQgetisnull(res, r, 2) || strlen(h) != 32 ||
				strlen(PQgetvalue(res, r, 0)) >= NAMEDATALEN)
			{
				PQclear(res);
				peer_lied("a malformed row");
			}
			strlcpy(bk.tenant, PQgetvalue(res, r, 0), NAMEDATALEN);
			bk.bucket = atoi(PQgetvalue(res, r, 1));
			/* only the (tenant, bucket) pairs asked for */
			if (hash_search(asked, &bk, HASH_FIND, NULL) == NULL)
			{
				PQclear(res);
				peer_lied("rows it was not asked for");
			}
			rrows[nr].tenant = pstrdup(bk.tenant);
			rrows[nr].bucket = bk.bucket;
			rrows[nr].key = pstrdup(PQgetvalue(res, r, 2));
			rrows[nr].hash = pstrdup(h);
		}
		PQclear(res);
	}

	/* merge the two sorted lists */
	if (nl > 1)
		qsort(lrows, nl, sizeof(PeerRow), cmp_rows);
	if (nr > 1)
		qsort(rrows, nr, sizeof(PeerRow), cmp_rows);
	for (j = 1; j < nr; j++)
		if (cmp_rows(&rrows[j - 1], &rrows[j]) == 0)
			peer_lied("the same row twice");
	i = j = 0;
	while (i < nl || j < nr)
	{
		int			c = (i >= nl) ? 1 : (j >= nr) ? -1 : cmp_rows(&lrows[i], &rrows[j]);
		Diff	   *d = NULL;

		if (c < 0)
		{
			d = palloc0(sizeof(Diff));
			d->tenant = lrows[i].tenant;
			d->key = lrows[i].key;
			d->status = "missing_on_peer";
			i++;
		}
		else if (c > 0)
		{
			d = palloc0(sizeof(Diff));
			d->tenant = rrows[j].tenant;
			d->key = rrows[j].key;
			d->hash = rrows[j].hash;
			d->bucket = rrows[j].bucket;
			d->status = "missing_here";
			j++;
		}
		else
		{
			if (strcmp(lrows[i].hash, rrows[j].hash) != 0)
			{
				d = palloc0(sizeof(Diff));
				d->tenant = lrows[i].tenant;
				d->key = lrows[i].key;
				d->hash = rrows[j].hash;
				d->bucket = rrows[j].bucket;
				d->status = "differs";
			}
			i++;
			j++;
		}
		if (d)
			diffs = lappend(diffs, d);
	}
	return diffs;
}

PG_FUNCTION_INFO_V1(ti_diff_peer);
Datum
ti_diff_peer(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *peer;
	char	   *tenant;
	PGconn	   *conn;
	List	   *volatile diffs = NIL;
	ListCell   *lc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and peer must not be null")));
	relid = PG_GETARG_OID(0);
	peer = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tenant = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	InitMaterializedSRF(fcinfo, 0);
	peer_bytes = 0;

	ti_digest_check_access(relid, false);
	conn = peer_connect(peer);
	PG_TRY();
	{
		peer_begin(conn);
		diffs = compute_diff(relid, conn, tenant);
	}
	PG_FINALLY();
	{
		peer_close(conn);
	}
	PG_END_TRY();

	foreach(lc, diffs)
	{
		Diff	   *d = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(d->tenant);
		values[1] = CStringGetTextDatum(d->key);
		values[2] = CStringGetTextDatum(d->status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static char *
insert_columns_sql(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated)
			continue;
		appendStringInfo(&s, "%s%s", s.len ? ", " : "", quote_identifier(NameStr(a->attname)));
	}
	table_close(rel, AccessShareLock);
	return s.data;
}

/*
 * Write the peer's version of one row: fetch it from the peer (in the same
 * transaction that advertised its hash), insert it, re-hash what was
 * inserted, and abort unless its tenant, key, hash and bucket are the ones
 * requested and advertised.
 */
static void
repair_insert(PGconn *conn, Oid relid, Diff *d, const char *fetch, const char *probe,
			  const char *ins)
{
	const char *params[1];
	PGresult   *res;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	Oid			leaf;
	ItemPointerData tid;
	char	   *key;
	char		tenant[NAMEDATALEN];
	char		hex[33];
	int32		bucket = -1;

	params[0] = d->key;
	res = peer_exec(conn, fetch, 1, params);
	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
	{
		PQclear(res);
		peer_lied("a row other than the one it advertised");
	}
	args[0] = CStringGetTextDatum(PQgetvalue(res, 0, 0));
	PQclear(res);
	/* its tenant and key, before it touches the table */
	if (SPI_execute_with_args(probe, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read a fetched row");
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (key == NULL || strcmp(key, d->key) != 0 ||
		(SPI_tuptable->tupdesc->natts > 1 &&
		 (SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) == NULL ||
		  strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), d->tenant) != 0)))
		peer_lied("a row that does not match its key or its tenant");
	if (SPI_execute_with_args(ins, 1, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not insert a repaired row");
	leaf = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																SPI_tuptable->tupdesc, 2, &isnull)),
					&tid);
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	CommandCounterIncrement();
	if (!ti_row_hash_at(relid, leaf, &tid, tenant, hex, &bucket) ||
		key == NULL || strcmp(key, d->key) != 0 || strcmp(tenant, d->tenant) != 0 ||
		d->hash == NULL || strcmp(hex, d->hash) != 0 || bucket != d->bucket)
		peer_lied("a row that does not match its key, its tenant or the hash it advertised");
}

PG_FUNCTION_INFO_V1(ti_repair_from_peer);
Datum
ti_repair_from_peer(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *peer;
	char	   *tenant;
	bool		dry_run;
	PGconn	   *conn;
	List	   *volatile diffs = NIL;
	ListCell   *lc;
	char	   *relname;
	char	   *keycols;
	char	   *match;
	char	   *cols;
	const char *tcol;
	volatile int64 n_del = 0,
				n_ins = 0,
				n_upd = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and peer must not be null")));
	relid = PG_GETARG_OID(0);
	peer = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tenant = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	dry_run = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	if (!dry_run && (RecoveryInProgress() || XactReadOnly))
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("repair_from_peer() needs a writable node"),
				 errhint("Use dry_run => true to only report."),
				 errhidestmt(true)));
	ti_digest_check_access(relid, false);
	relname = ti_qualified_name(relid);
	key_sql(relid, &keycols, &match);
	cols = insert_columns_sql(relid);
	tcol = ti_protected_column(relid);
	InitMaterializedSRF(fcinfo, 0);
	peer_bytes = 0;

	conn = peer_connect(peer);
	PG_TRY();
	{
		const char *only = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ";
		char	   *fetch = psprintf("SELECT pg_catalog.to_jsonb(t.*)::pg_catalog.text FROM %s%s t, "
									 "pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r "
									 "WHERE %s",
									 only, relname, relname, match);
		/* a local delete never reaches beyond the tenant of the row */
		char	   *del = psprintf("DELETE FROM %s%s t "
								   "USING pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r "
								   "WHERE %s%s%s%s",
								   only, relname, relname, match,
								   tcol ? " AND t." : "",
								   tcol ? quote_identifier(tcol) : "",
								   tcol ? "::pg_catalog.text OPERATOR(pg_catalog.=) $2" : "");
		char	   *ins = psprintf("INSERT INTO %s AS t (%s) OVERRIDING SYSTEM VALUE "
								   "SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) "
								   "RETURNING t.tableoid, t.ctid, "
								   "(SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT %s) k)::pg_catalog.text",
								   relname, cols, cols, relname, keycols);
		char	   *probe = psprintf("SELECT (SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT %s) k)::pg_catalog.text%s%s%s "
									 "FROM pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) t",
									 keycols, tcol ? ", t." : "", tcol ? quote_identifier(tcol) : "",
									 tcol ? "::pg_catalog.text" : "", relname);
		int			nest = 0;

		peer_begin(conn);
		diffs = compute_diff(relid, conn, tenant);
		if (!dry_run)
		{
			nest = ti_pin_search_path();
			SPI_connect();
		}
		foreach(lc, diffs)
		{
			Diff	   *d = lfirst(lc);
			const char *action;
			Datum		values[3];
			bool		nulls[3] = {false, false, false};
			bool		missing_on_peer = strcmp(d->status, "missing_on_peer") == 0;
			bool		missing_here = strcmp(d->status, "missing_here") == 0;

			if (missing_on_peer)
				action = dry_run ? "would delete" : "deleted";
			else if (missing_here)
				action = dry_run ? "would insert" : "inserted";
			else
				action = dry_run ? "would update" : "updated";

			if (!dry_run)
			{
				Oid			argtypes[2] = {TEXTOID, TEXTOID};
				Datum		args[2];

				args[0] = CStringGetTextDatum(d->key);
				args[1] = CStringGetTextDatum(d->tenant);
				if (SPI_execute_with_args(del, tcol ? 2 : 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
					elog(ERROR, "could not delete a diverged row");
				if (!missing_here && SPI_processed != 1)
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("a row of tenant \"%s\" in %s changed here during the repair", d->tenant, relname),
							 errhint("Run repair_from_peer() again."),
							 errhidestmt(true)));
				if (missing_here && SPI_processed != 0)
					peer_lied("a row this node has as missing here");
				if (!missing_on_peer)
					repair_insert(conn, relid, d, fetch, probe, ins);
				if (missing_on_peer)
					n_del++;
				else if (missing_here)
					n_ins++;
				else
					n_upd++;
				/* counts, the tenant and the row hash: never a key value */
				ereport(LOG,
						(errmsg("tenant_iso: repair_from_peer %s a row of tenant \"%s\" in %s (peer row hash %s)",
								action, d->tenant, relname, d->hash ? d->hash : "none"),
						 errhidestmt(true)));
			}
			values[0] = CStringGetTextDatum(d->tenant);
			values[1] = CStringGetTextDatum(d->key);
			values[2] = CStringGetTextDatum(action);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if (!dry_run)
		{
			SPI_finish();
			ti_unpin_search_path(nest);
			if (diffs != NIL)
				ereport(LOG,
						(errmsg("tenant_iso: repair_from_peer on %s: %lld updated, %lld inserted, %lld deleted",
								relname, (long long) n_upd, (long long) n_ins, (long long) n_del),
						 errhidestmt(true)));
		}
	}
	PG_FINALLY();
	{
		peer_close(conn);
	}
	PG_END_TRY();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ti_peer_bytes);
Datum
ti_peer_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(peer_bytes);
}

/* ---------------------------------------------------------------------
 * The integrity monitor's calls to its peers (monitor.c, 85_monitor.sql)
 * --------------------------------------------------------------------- */

static void
monitor_only(void)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may run the integrity monitor's peer calls")));
}

/*
 * _peer_query(conninfo text, sql text, params text[]) RETURNS SETOF text[]:
 * one statement of the monitor's own (schema-qualified) SQL on a peer, in a
 * REPEATABLE READ READ ONLY transaction there; each row comes back as an
 * array of its columns' text.  Superuser only: the SQL is the caller's.
 */
PG_FUNCTION_INFO_V1(ti_peer_query);
Datum
ti_peer_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *peer;
	char	   *sql;
	const char **volatile pv = NULL;
	int			np = 0;
	PGconn	   *conn;
	PGresult   *volatile res = NULL;

	monitor_only();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("peer and query must not be null")));
	peer = text_to_cstring(PG_GETARG_TEXT_PP(0));
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &np);
		pv = palloc0(sizeof(char *) * (np + 1));
		for (i = 0; i < np; i++)
			pv[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	}
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	conn = peer_connect(peer);
	PG_TRY();
	{
		int			i,
					c;

		peer_begin(conn);
		/* the peer's reads for the monitor (its verify()) yield there too */
		PQclear(peer_exec(conn, "SELECT tenant_iso._monitor_nice()", 0, NULL));
		res = peer_exec(conn, sql, np, pv);
		for (i = 0; i < PQntuples(res); i++)
		{
			int			nf = PQnfields(res);
			Datum	   *d = palloc(sizeof(Datum) * (nf > 0 ? nf : 1));
			bool	   *dn = palloc(sizeof(bool) * (nf > 0 ? nf : 1));
			int			dims[1] = {nf};
			int			lbs[1] = {1};
			Datum		values[1];
			bool		nulls[1] = {false};

			for (c = 0; c < nf; c++)
			{
				dn[c] = PQgetisnull(res, i, c);
				d[c] = dn[c] ? (Datum) 0 : CStringGetTextDatum(PQgetvalue(res, i, c));
			}
			values[0] = PointerGetDatum(construct_md_array(d, dn, 1, dims, lbs, TEXTOID, -1, false,
														   TYPALIGN_INT));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		PQclear(res);
		res = NULL;
	}
	PG_FINALLY();
	{
		if (res)
			PQclear(res);
		peer_close(conn);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/*
 * _repair_peer(conninfo text, relname text, source text, tenant text,
 *				expected text, rebuild boolean) RETURNS bigint
 *
 * Make one tenant's rows on a writable peer (a subscriber) equal to those of
 * source (a conninfo as the peer reaches it) with repair_from_peer() run
 * there, in one transaction that commits only if, afterwards, the peer's
 * verify() passes for the tenant and its stored digest is expected (NULL:
 * the tenant has no rows).  With rebuild, the tenant's stored digests on the
 * peer are first rebuilt from the repaired rows (a peer whose rows, not
 * digests, were corrupt).  Returns the number of rows repaired; a repair
 * that does not verify is rolled back there and raises XX001.
 */
PG_FUNCTION_INFO_V1(ti_repair_peer);
Datum
ti_repair_peer(PG_FUNCTION_ARGS)
{
	char	   *peer;
	const char *pv[3];
	char	   *expected;
	bool		rebuild;
	PGconn	   *conn;
	volatile int64 n = 0;
	volatile bool verified = false;

	monitor_only();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("peer, table, source and tenant must not be null")));
	peer = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pv[0] = text_to_cstring(PG_GETARG_TEXT_PP(1));
	pv[1] = text_to_cstring(PG_GETARG_TEXT_PP(2));
	pv[2] = text_to_cstring(PG_GETARG_TEXT_PP(3));
	expected = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	rebuild = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);

	conn = peer_connect(peer);
	PG_TRY();
	{
		PGresult   *res;

		peer_send(conn, "BEGIN", 0, NULL);
		PQclear(peer_wait(conn, PGRES_COMMAND_OK));
		res = peer_exec(conn, "SELECT pg_catalog.count(*) FROM tenant_iso.repair_from_peer("
						"$1::pg_catalog.regclass, $2, $3, false)", 3, pv);
		n = PQntuples(res) == 1 ? pg_strtoint64(PQgetvalue(res, 0, 0)) : 0;
		PQclear(res);
		if (rebuild)
			PQclear(peer_exec(conn, "SELECT tenant_iso._rebuild_tenant_digests($1::pg_catalog.regclass, $3) "
							  "WHERE $2::pg_catalog.text IS NOT NULL", 3, pv));
		res = peer_exec(conn, "SELECT v.ok::pg_catalog.text, v.expected FROM tenant_iso.verify("
						"$1::pg_catalog.regclass, $3) v WHERE $2::pg_catalog.text IS NOT NULL", 3, pv);
		if (PQntuples(res) == 0)
			verified = (expected == NULL || strncmp(expected, "0:", 2) == 0);
		else if (PQntuples(res) == 1)
			verified = strcmp(PQgetvalue(res, 0, 0), "true") == 0 &&
				expected != NULL && strcmp(PQgetvalue(res, 0, 1), expected) == 0;
		PQclear(res);
		peer_send(conn, verified ? "COMMIT" : "ROLLBACK", 0, NULL);
		PQclear(peer_wait(conn, PGRES_COMMAND_OK));
	}
	PG_FINALLY();
	{
		peer_close(conn);
	}
	PG_END_TRY();
	if (!verified)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the repair of tenant \"%s\" in %s on the peer did not verify", pv[2], pv[0]),
				 errdetail("It was rolled back there; nothing was kept."),
				 errhidestmt(true)));
	PG_RETURN_INT64(n);
}

PG_FUNCTION_INFO_V1(ti_peer_bytes_total_fn);
Datum
ti_peer_bytes_total_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(ti_peer_bytes_total);
}
