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
 * Elevated paths (issue 10 section 1):
 *	- ti_diff_peer and ti_repair_from_peer run as their caller (an
 *	  administrator, who may read and write every tenant's rows), often
 *	  with a search_path that names tenant-writable schemas.  Each pins
 *	  search_path = pg_catalog, pg_temp (ti_pin_search_path) for its whole
 *	  body, popped on return and by (sub)transaction abort on error, so the
 *	  local SPI (listing rows, deleting and inserting repaired rows) and
 *	  anything it fires resolve no name through the caller's path.  Their
 *	  SQL is schema-qualified as well: functions, casts, operators (a key
 *	  column is compared with its primary key index's own equality
 *	  operator, named with its schema) and the table.
 *	- The peer's session runs our SQL as the peer role: peer_connect merges
 *	  options=-csearch_path=pg_catalog into the caller's conninfo (after the
 *	  caller's own options, so it overrides any search_path there and the
 *	  role's or database's default), and the SQL sent is the same qualified
 *	  SQL.  The session is new, so it has no temporary objects to find.
 */
#include "postgres.h"

#include "libpq-fe.h"

#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"

#include "digest.h"
#include "elevated.h"
#include "tenant_iso.h"

static int64 peer_bytes = 0;

typedef struct PeerRow
{
	char	   *tenant;
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

/* What the peer's session must run with, whatever the conninfo says. */
#define PEER_OPTIONS "-csearch_path=pg_catalog"

/*
 * Connect to the peer.  The caller's conninfo is parsed and passed on
 * keyword by keyword (so a connect_timeout or application_name of its own
 * overrides ours), with PEER_OPTIONS appended to its options: the last -c
 * for a setting wins, and a client option outranks the peer role's and
 * database's defaults.
 */
static PGconn *
peer_connect(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	const char **keys;
	const char **vals;
	const char *user_options = NULL;
	int			n = 0;
	char	   *password = NULL;
	char	   *parse_error = NULL;
	PGconn	   *conn;

	/* a malformed conninfo is refused without echoing any of it */
	opts = PQconninfoParse(conninfo, &parse_error);
	if (opts == NULL)
	{
		if (parse_error)
			PQfreemem(parse_error);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the peer"),
				 errdetail("The peer's connection string is malformed.")));
	}
	for (o = opts; o->keyword; o++)
		n++;
	keys = palloc0(sizeof(char *) * (n + 4));
	vals = palloc0(sizeof(char *) * (n + 4));
	n = 0;
	keys[n] = "connect_timeout";
	vals[n++] = "10";
	keys[n] = "application_name";
	vals[n++] = "tenant_iso peer";
	for (o = opts; o->keyword; o++)
	{
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0 && o->val[0])
			password = pstrdup(o->val);
		if (strcmp(o->keyword, "options") == 0)
		{
			user_options = o->val;
			continue;
		}
		keys[n] = pstrdup(o->keyword);
		vals[n++] = pstrdup(o->val);
	}
	keys[n] = "options";
	vals[n++] = (user_options && user_options[0]) ?
		psprintf("%s %s", user_options, PEER_OPTIONS) : PEER_OPTIONS;
	keys[n] = NULL;
	vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 0);
	PQconninfoFree(opts);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pchomp(PQerrorMessage(conn)) : pstrdup("out of memory");

		if (conn)
			PQfinish(conn);
		msg = scrub(msg, password);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the peer"),
				 errdetail_internal("%s", msg)));
	}
	return conn;
}

static PGresult *
peer_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	int			r,
				c;

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		char	   *msg = pchomp(PQresultErrorMessage(res));

		/* the caller's PG_FINALLY owns (and finishes) the connection */
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("query on the peer failed"),
				 errdetail_internal("%s", msg),
				 errhint("The peer needs tenant_iso and the same table, and a role that may read every tenant's rows.")));
	}
	for (r = 0; r < PQntuples(res); r++)
		for (c = 0; c < PQnfields(res); c++)
			peer_bytes += PQgetlength(res, r, c);
	return res;
}

/*
 * SQL for a table's primary key, each part only if asked for: *cols
 * "t.k1, t.k2" and *match "t.k1 OPERATOR(nsp.=) r.k1 AND ...".  Each
 * column is compared with the equality operator of its index's operator
 * family, named with its schema, so that no search_path picks the operator
 * (the key type's may live outside pg_catalog, as citext's does) and the
 * index still serves the comparison.
 */
static void
key_sql(Oid relid, char **cols, char **match)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
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
 * SQL that lists (tenant, key jsonb, row hash) of some buckets; $1..$4.
 * Whole rows are written alias.*: a bare alias would name a column of the
 * same name instead, if the table has one.
 */
static char *
rows_sql(const char *relname, const char *keycols)
{
	return psprintf("SELECT b.tenant_id, (SELECT pg_catalog.to_jsonb(ti_key.*) FROM (SELECT %s) ti_key)::pg_catalog.text, "
					"pg_catalog.encode(b.rowhash, 'hex') "
					"FROM tenant_iso._bucket_rows($1, $2::pg_catalog.text[], $3::pg_catalog.int4, $4::pg_catalog.int4[]) b "
					"JOIN %s t ON t.tableoid OPERATOR(pg_catalog.=) b.leaf "
					"AND t.ctid OPERATOR(pg_catalog.=) b.tid",
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
} Diff;

static int
cmp_rows(const void *a, const void *b)
{
	const PeerRow *x = a,
			   *y = b;
	int			c = strcmp(x->tenant, y->tenant);

	return c ? c : strcmp(x->key, y->key);
}

/* Send a query to the peer without waiting for it. */
static void
peer_send(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("query on the peer failed"),
				 errdetail_internal("%s", msg)));
	}
}

/* Collect the result of peer_send(). */
static PGresult *
peer_wait(PGconn *conn)
{
	PGresult   *res = NULL;
	PGresult   *r;
	int			i,
				c;

	while ((r = PQgetResult(conn)) != NULL)
	{
		if (res)
			PQclear(res);
		res = r;
	}
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char	   *msg = pchomp(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));

		if (res)
			PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("query on the peer failed"),
				 errdetail_internal("%s", msg),
				 errhint("The peer needs tenant_iso and the same table, and a role that may read every tenant's rows.")));
	}
	for (i = 0; i < PQntuples(res); i++)
		for (c = 0; c < PQnfields(res); c++)
			peer_bytes += PQgetlength(res, i, c);
	return res;
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
	peer_send(conn, "SELECT tenant_id, bucket, fingerprint "
			  "FROM tenant_iso._bucket_digests($1, $2::pg_catalog.text[], $3::pg_catalog.int4)",
			  3, params);
	local = ti_live_digests(relid, tenants, nbuckets);
	res = peer_wait(conn);

	ctl.keysize = sizeof(BucketKey);
	ctl.entrysize = sizeof(RemoteBucket);
	ctl.hcxt = CurrentMemoryContext;
	remote = hash_create("tenant_iso peer digests", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (r = 0; r < PQntuples(res); r++)
	{
		BucketKey	k;
		bool		found;

		memset(&k, 0, sizeof(k));
		strlcpy(k.tenant, PQgetvalue(res, r, 0), NAMEDATALEN);
		k.bucket = atoi(PQgetvalue(res, r, 1));
		rb = hash_search(remote, &k, HASH_ENTER, &found);
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

		initStringInfo(&bl);
		appendStringInfoChar(&bl, '{');
		foreach(lc, buckets)
		{
			BucketKey  *bk = lfirst(lc);

			btenants = lappend(btenants, bk->tenant);
			appendStringInfo(&bl, "%s%d", bl.len > 1 ? "," : "", bk->bucket);
		}
		appendStringInfoChar(&bl, '}');
		snprintf(nb, sizeof(nb), "%d", TI_DIFF_BUCKETS);
		params[0] = relname;
		params[1] = text_array_literal(btenants);
		params[2] = nb;
		params[3] = bl.data;
		peer_send(conn, sql, 4, params);

		outer = CurrentMemoryContext;
		SPI_connect();
		values[0] = CStringGetTextDatum(relname);
		values[1] = CStringGetTextDatum(params[1]);
		values[2] = Int32GetDatum(TI_DIFF_BUCKETS);
		values[3] = CStringGetTextDatum(bl.data);
		if (SPI_execute_with_args(sql, 4, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not list local rows");
		/* SPI leaves its own context current; results must outlive it */
		MemoryContextSwitchTo(outer);
		lrows = palloc(sizeof(PeerRow) * (SPI_processed + 1));
		for (k = 0; k < SPI_processed; k++, nl++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];

			lrows[nl].tenant = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
			lrows[nl].key = SPI_getvalue(tup, SPI_tuptable->tupdesc, 2);
			lrows[nl].hash = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
		}
		SPI_finish();

		res = peer_wait(conn);
		rrows = palloc(sizeof(PeerRow) * (PQntuples(res) + 1));
		for (r = 0; r < PQntuples(res); r++, nr++)
		{
			rrows[nr].tenant = pstrdup(PQgetvalue(res, r, 0));
			rrows[nr].key = pstrdup(PQgetvalue(res, r, 1));
			rrows[nr].hash = pstrdup(PQgetvalue(res, r, 2));
		}
		PQclear(res);
	}

	/* merge the two sorted lists */
	if (nl > 1)
		qsort(lrows, nl, sizeof(PeerRow), cmp_rows);
	if (nr > 1)
		qsort(rrows, nr, sizeof(PeerRow), cmp_rows);
	i = j = 0;
	while (i < nl || j < nr)
	{
		int			c = (i >= nl) ? 1 : (j >= nr) ? -1 : cmp_rows(&lrows[i], &rrows[j]);
		Diff	   *d = NULL;

		if (c < 0)
		{
			d = palloc(sizeof(Diff));
			d->tenant = lrows[i].tenant;
			d->key = lrows[i].key;
			d->status = "missing_on_peer";
			i++;
		}
		else if (c > 0)
		{
			d = palloc(sizeof(Diff));
			d->tenant = rrows[j].tenant;
			d->key = rrows[j].key;
			d->status = "missing_here";
			j++;
		}
		else
		{
			if (strcmp(lrows[i].hash, rrows[j].hash) != 0)
			{
				d = palloc(sizeof(Diff));
				d->tenant = lrows[i].tenant;
				d->key = lrows[i].key;
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
	int			nestlevel;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and peer must not be null")));
	relid = PG_GETARG_OID(0);
	peer = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tenant = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	InitMaterializedSRF(fcinfo, 0);
	peer_bytes = 0;
	nestlevel = ti_pin_search_path();

	conn = peer_connect(peer);
	PG_TRY();
	{
		diffs = compute_diff(relid, conn, tenant);
	}
	PG_FINALLY();
	{
		PQfinish(conn);
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
	ti_unpin_search_path(nestlevel);
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
	char	   *keymatch;
	char	   *cols;
	int			nestlevel;

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
				 errhint("Use dry_run => true to only report.")));
	nestlevel = ti_pin_search_path();
	relname = ti_qualified_name(relid);
	key_sql(relid, NULL, &keymatch);
	cols = insert_columns_sql(relid);
	InitMaterializedSRF(fcinfo, 0);
	peer_bytes = 0;

	conn = peer_connect(peer);
	PG_TRY();
	{
		const char *only = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ";
		char	   *fetch = psprintf("SELECT pg_catalog.to_jsonb(t.*)::pg_catalog.text FROM %s%s t, "
									 "pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r "
									 "WHERE %s",
									 only, relname, relname, keymatch);
		char	   *del = psprintf("DELETE FROM %s%s t "
								   "USING pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r "
								   "WHERE %s",
								   only, relname, relname, keymatch);
		char	   *ins = psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE "
								   "SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb)",
								   relname, cols, cols, relname);

		diffs = compute_diff(relid, conn, tenant);
		if (!dry_run)
			SPI_connect();
		foreach(lc, diffs)
		{
			Diff	   *d = lfirst(lc);
			const char *action;
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			if (strcmp(d->status, "missing_on_peer") == 0)
				action = dry_run ? "would delete" : "deleted";
			else if (strcmp(d->status, "missing_here") == 0)
				action = dry_run ? "would insert" : "inserted";
			else
				action = dry_run ? "would update" : "updated";

			if (!dry_run)
			{
				Oid			argtypes[1] = {TEXTOID};
				Datum		args[1];
				const char *params[1];

				args[0] = CStringGetTextDatum(d->key);
				if (SPI_execute_with_args(del, 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
					elog(ERROR, "could not delete a diverged row");
				if (strcmp(d->status, "missing_on_peer") != 0)
				{
					PGresult   *res;

					params[0] = d->key;
					res = peer_exec(conn, fetch, 1, params);
					if (PQntuples(res) != 1)
					{
						PQclear(res);
						ereport(ERROR,
								(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								 errmsg("row %s of tenant \"%s\" changed on the peer during the repair", d->key, d->tenant),
								 errhint("Run repair_from_peer() again.")));
					}
					args[0] = CStringGetTextDatum(PQgetvalue(res, 0, 0));
					PQclear(res);
					if (SPI_execute_with_args(ins, 1, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
						elog(ERROR, "could not insert a repaired row");
				}
				ereport(LOG,
						(errmsg("tenant_iso: repair_from_peer %s row %s of tenant \"%s\" in %s",
								action, d->key, d->tenant, relname)));
			}
			values[0] = CStringGetTextDatum(d->tenant);
			values[1] = CStringGetTextDatum(d->key);
			values[2] = CStringGetTextDatum(action);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if (!dry_run)
			SPI_finish();
	}
	PG_FINALLY();
	{
		PQfinish(conn);
	}
	PG_END_TRY();
	ti_unpin_search_path(nestlevel);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ti_peer_bytes);
Datum
ti_peer_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(peer_bytes);
}
